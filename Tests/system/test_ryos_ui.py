"""A ryOS UI simulator (issue 27): browsers that hold nothing but a cookie jar and an Origin, replaying the Chats UI's
calls in the order ryOS makes them (../shared/reference/ryos-chat-contract.md, section 5), through nginx
(ops/nginx-ryos.conf.template, rendered) in front of two workers; ryOS's local realtime socket (/ws) as the UI opens
it; the pusher provider's path with pysher; CSRF; the native-TTL presence key; the support seed flow."""
import html
import json
import os
import queue
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import warnings

import pusher
import pysher
import pytest
import requests
import websocket

from conftest import ROOT, Nginx, User, free_port, render_nginx, wait_until

KEY, SECRET, APP = "ryos-key", "ryos-secret-123", "2727"
RYO_PASSWORD = "ryo-admin-password-1"
PASSWORD = "hunter2hunter2"
TEMPLATE = os.path.join(ROOT, "ops", "nginx-ryos.conf.template")
FOREIGN = "https://evil.example"
COOKIE_RE = re.compile(r"^([a-z0-9_-]+):([0-9a-f]{64})$")


# ---------------------------------------------------------------------------------------------------------------------
# nginx in front of the workers, with the documented config


def render_ryos_nginx(listen, prefix, upstreams, dist, upstream_header=False, pid=None):
    """ops/nginx-ryos.conf.template with its placeholders filled in. upstream_header: every proxied answer names the
    worker that gave it (X-Upstream), so a test can tell where each request landed."""
    text = render_nginx(TEMPLATE, listen, prefix, upstreams, pid=pid, RYOS_DIST=dist)
    if upstream_header:
        text = text.replace("proxy_pass http://presence;",
                            "proxy_pass http://presence;\n            add_header X-Upstream $upstream_addr always;")
    return text


def write_dist(prefix):
    """A stand-in ryOS build (index.html and one hashed asset) in <prefix>/dist; returns its path."""
    dist = os.path.join(prefix, "dist")
    os.makedirs(os.path.join(dist, "assets"))
    with open(os.path.join(dist, "index.html"), "w") as f:
        f.write('<!doctype html><html><head><script src="/app-config.js"></script>'
                '<script type="module" src="/assets/index-abc123.js"></script></head>'
                '<body><div id="root">ryOS</div></body></html>\n')
    with open(os.path.join(dist, "assets", "index-abc123.js"), "w") as f:
        f.write("console.log('ryOS');\n")
    return dist


def ryos_nginx(port, upstreams, upstream_header=True):
    """nginx with the ryOS config on `port` in front of `upstreams`, serving the stand-in build (write_dist)."""
    def render(listen, prefix):
        return render_ryos_nginx(listen, prefix, upstreams, write_dist(prefix), upstream_header)
    return Nginx(render, port, ready_path="/index.html", dir_prefix="presence-test-nginx-ryos-")


class Site:
    """Two workers on the test's Redis, nginx with the ryOS config in front: what a browser sees at `origin`."""

    def __init__(self, cluster, nginx):
        self.cluster = cluster
        self.nginx = nginx
        self.origin = f"http://127.0.0.1:{nginx.port}"
        self.ws_origin = f"ws://127.0.0.1:{nginx.port}"
        self.workers = cluster.workers
        self.worker_addrs = {w.base.split("//", 1)[1] for w in cluster.workers}
        self.pusher_api = pusher.Pusher(app_id=APP, key=KEY, secret=SECRET, host="127.0.0.1",
                                        port=int(cluster.b.base.rsplit(":", 1)[1]), ssl=False)

    def redis(self):
        return self.cluster.redis()


@pytest.fixture
def make_site(make_cluster):
    started = []

    def make(provider="local", **env):
        # The nginx port is chosen first: the workers are told their public origin (APP_PUBLIC_ORIGIN) and allow it.
        port = free_port()
        origin = f"http://127.0.0.1:{port}"
        settings = dict(ADMIN_USERS="ryo", ADMIN_PASSWORD=RYO_PASSWORD, APP_PUBLIC_ORIGIN=origin, ALLOWED_ORIGINS=origin,
                        REALTIME_PROVIDER=provider, PUSHER_KEY=KEY, PUSHER_SECRET=SECRET, PUSHER_APP_ID=APP,
                        SWEEP_INTERVAL_MS=250)
        settings.update(env)
        c = make_cluster(2, **settings)
        site = Site(c, ryos_nginx(port, [w.base.split("//", 1)[1] for w in c.workers]))
        started.append(site)
        return site

    yield make
    for site in started:
        if os.environ.get("KEEP_SERVER_LOGS"):
            print(site.nginx.output())
        site.nginx.stop()


@pytest.fixture
def site(make_site):
    return make_site()


# ---------------------------------------------------------------------------------------------------------------------
# A browser: a cookie jar and an Origin, nothing else


def cookies_of(r):
    """The ryos_auth Set-Cookie headers of a response, each as (value, {attribute: value})."""
    out = []
    for header in r.raw.headers.getlist("Set-Cookie"):
        parts = [p.strip() for p in header.split(";")]
        name, _, value = parts[0].partition("=")
        if name != "ryos_auth":
            continue
        attrs = {}
        for p in parts[1:]:
            k, _, v = p.partition("=")
            attrs[k.strip().lower()] = v.strip()
        out.append((value, attrs))
    return out


def assert_cookie_set(r, username, secure=False):
    cookies = cookies_of(r)
    assert len(cookies) == 1, f"{r.request.method} {r.url}: Set-Cookie {r.raw.headers.getlist('Set-Cookie')}"
    value, attrs = cookies[0]
    m = COOKIE_RE.match(requests.utils.unquote(value))
    assert m and m.group(1) == username, value
    assert "httponly" in attrs and attrs.get("path") == "/api" and attrs.get("samesite", "").lower() == "lax", attrs
    assert int(attrs.get("max-age", "0")) > 0, attrs
    assert ("secure" in attrs) == secure, attrs
    return m.group(2)


def assert_cookie_cleared(r):
    cookies = cookies_of(r)
    assert len(cookies) == 1, f"{r.request.method} {r.url}: Set-Cookie {r.raw.headers.getlist('Set-Cookie')}"
    value, attrs = cookies[0]
    assert value == "" and attrs.get("max-age") == "0" and attrs.get("path") == "/api" and "httponly" in attrs, cookies


class Browser:
    """One browser profile: requests go through nginx with the cookie jar and `Origin`, as the ryOS UI sends them
    (`credentials: "include"`, `Content-Type: application/json`, `X-User-Timezone`); never an auth header."""

    def __init__(self, site, origin=None):
        self.site = site
        self.s = requests.Session()
        self.s.headers.update({"Origin": origin or site.origin, "X-User-Timezone": "Europe/Paris",
                               "User-Agent": "ryos-ui-simulator"})
        self.upstreams = []
        self.sockets = []

    def call(self, method, path, json_body=None, expect=None, **kwargs):
        if json_body is not None:
            kwargs["json"] = json_body
        r = self.s.request(method, self.site.origin + path, timeout=60, **kwargs)
        assert "Authorization" not in r.request.headers and "X-Username" not in r.request.headers
        if r.headers.get("X-Upstream"):
            self.upstreams.append(r.headers["X-Upstream"])
        if expect is not None:
            assert r.status_code == expect, f"{method} {path}: {r.status_code} {r.text[:500]}"
        return r

    def get(self, path, expect=200, **kw):
        return self.call("GET", path, expect=expect, **kw)

    def post(self, path, body=None, expect=200, **kw):
        return self.call("POST", path, json_body=body, expect=expect, **kw)

    @property
    def cookie(self):
        return self.s.cookies.get("ryos_auth")

    # -- the UI's steps

    def app_config(self):
        r = self.s.get(self.site.origin + "/app-config.js", timeout=30)
        assert r.status_code == 200, r.text
        assert "javascript" in r.headers.get("Content-Type", ""), r.headers
        m = re.search(r"window\.__RYOS_RUNTIME_CONFIG__\s*=\s*(\{.*\})\s*;?\s*$", r.text, re.S)
        assert m, r.text
        return json.loads(m.group(1))

    def websocket_url(self, config):
        """As runtimeConfig.ts: websocketUrl, or else the public origin (http→ws) + websocketPath."""
        if config.get("websocketUrl"):
            return config["websocketUrl"]
        origin = config.get("appPublicOrigin") or self.site.origin
        return re.sub(r"^http", "ws", origin) + config.get("websocketPath", "/ws")

    def open_socket(self, config):
        """LocalRealtimeClient.openSocket: a ticket when the cookie gets one, else a public-only socket."""
        r = self.call("POST", "/api/realtime/ticket", headers={"Content-Type": "application/json"})
        ticket = None
        if r.status_code == 200:
            ticket = r.json()["ticket"]
            assert re.fullmatch(r"[0-9a-f]{64}", ticket), r.text
        url = self.websocket_url(config) + (f"?ticket={ticket}" if ticket else "")
        sock = RyosSocket(url, self.s.headers["Origin"])
        self.sockets.append(sock)
        return sock, r

    def close(self):
        for s in self.sockets:
            s.close()


class RyosSocket:
    """ryOS's local realtime protocol over a real WebSocket: JSON frames, every frame received kept in order."""

    def __init__(self, url, origin):
        self.url = url
        self.ws = websocket.create_connection(url, origin=origin, timeout=30)  # one Origin header, as a browser
        self.handshake_headers = self.ws.getheaders() or {}
        self.ws.settimeout(1)
        self.frames = queue.Queue()
        self.backlog = []
        self.closed = threading.Event()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        while not self.closed.is_set():
            try:
                text = self.ws.recv()
            except websocket.WebSocketTimeoutException:
                continue
            except Exception:
                break
            if not text:
                break
            try:
                self.frames.put(json.loads(text))
            except ValueError:
                self.frames.put({"type": "__unparsable__", "text": text})
        self.closed.set()

    def send(self, frame):
        self.ws.send(json.dumps(frame))

    def subscribe(self, *channels):
        for c in channels:
            self.send({"type": "subscribe", "channel": c})

    def frame(self, predicate, timeout=30.0, what="frame"):
        """The first frame (received so far or within `timeout`) matching `predicate`; the others stay."""
        for i, f in enumerate(self.backlog):
            if predicate(f):
                return self.backlog.pop(i)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                f = self.frames.get(timeout=0.1)
            except queue.Empty:
                continue
            if predicate(f):
                return f
            self.backlog.append(f)
        raise AssertionError(f"{what} not received on {self.url} within {timeout} s; got {self.backlog[-20:]}")

    def event(self, channel, name, match=lambda d: True, timeout=30.0):
        """The `data` of an `event` frame on `channel` named `name` whose data matches; checks the frame's shape."""
        def pred(f):
            return (f.get("type") == "event" and f.get("channel") == channel and f.get("event") == name
                    and isinstance(f.get("data"), dict) and match(f["data"]))
        f = self.frame(pred, timeout, what=f"{name} on {channel}")
        assert set(f) == {"type", "channel", "event", "data"}, f
        return f["data"]

    def no_event(self, channel, name, match=lambda d: True):
        """None of what arrived so far is such an event."""
        while True:
            try:
                self.backlog.append(self.frames.get_nowait())
            except queue.Empty:
                break
        hits = [f for f in self.backlog if f.get("type") == "event" and f.get("channel") == channel
                and f.get("event") == name and isinstance(f.get("data"), dict) and match(f["data"])]
        assert not hits, hits

    def ping(self, timeout=30.0):
        self.send({"type": "ping"})
        f = self.frame(lambda f: f.get("type") == "pong", timeout, what="pong")
        assert f == {"type": "pong"}, f

    def close(self):
        self.closed.set()
        try:
            self.ws.close(timeout=1)
        except Exception:
            pass


def ready(site, sock, *channels, timeout=20.0):
    """A barrier for ryOS's protocol, which acknowledges no subscribe: after a ping round trip, a probe event is sent to
    each channel through the Pusher HTTP API until the socket has received it, so each subscription is live across
    workers before the test makes the events it then waits for. Best effort: a probe that never arrives is a warning
    (the event assertions that follow decide)."""
    sock.ping()
    pending = set(channels)
    deadline = time.monotonic() + timeout
    n = 0
    while pending and time.monotonic() < deadline:
        n += 1
        try:
            site.pusher_api.trigger(sorted(pending), "ryos-probe", {"n": n})
        except Exception as e:  # noqa: BLE001 — the barrier must not be what fails
            warnings.warn(f"probe trigger failed: {e}")
            return
        end = min(deadline, time.monotonic() + 0.5)
        while pending and time.monotonic() < end:
            try:
                f = sock.frames.get(timeout=0.05)
            except queue.Empty:
                continue
            if f.get("type") == "event" and f.get("event") == "ryos-probe":
                pending.discard(f.get("channel"))
            else:
                sock.backlog.append(f)
    if pending:
        warnings.warn(f"probe events never reached {sorted(pending)} on {sock.url}")


def boot(browser, expect_user=None):
    """Section 5, step 1-2: app-config.js, the session, the rooms and their bulk messages; returns (config, rooms)."""
    config = browser.app_config()
    session = browser.get("/api/auth/session").json()
    if expect_user:
        assert session["authenticated"] is True and session["username"] == expect_user and session["expired"] is False, session
    else:
        assert session == {"authenticated": False}, session
    rooms = browser.get("/api/rooms").json()["rooms"]
    assert isinstance(rooms, list) and rooms
    for room in rooms:
        assert isinstance(room["id"], str) and isinstance(room["name"], str), room
        assert room.get("type", "public") in ("public", "private"), room
        assert isinstance(room["userCount"], int) and isinstance(room["createdAt"], int), room
        if room.get("type") == "private":
            assert expect_user in room["members"], room
    assert {"general", "random"} <= {r["id"] for r in rooms}
    ids = [r["id"] for r in rooms][:5]
    bulk = browser.get("/api/messages/bulk?roomIds=" + ",".join(ids)).json()
    check_bulk(bulk, valid=ids, invalid=[])
    return config, rooms


def check_message(m, room_id, username=None, content=None):
    assert isinstance(m["id"], str) and m["id"], m
    assert m["roomId"] == room_id and isinstance(m["timestamp"], (int, float)), m
    if username:
        assert m["username"] == username, m
    if content is not None:
        assert html.unescape(m["content"]) == content, m
    # Escaped as ryOS escapes it: no raw markup reaches the UI's DOMParser.
    assert "<" not in m["content"] and ">" not in m["content"] and '"' not in m["content"], m


def check_bulk(bulk, valid, invalid):
    assert set(bulk) >= {"messagesMap", "validRoomIds", "invalidRoomIds"}, bulk
    assert sorted(bulk["validRoomIds"]) == sorted(valid) and sorted(bulk["invalidRoomIds"]) == sorted(invalid), bulk
    assert set(bulk["messagesMap"]) <= set(valid), bulk
    for room_id, messages in bulk["messagesMap"].items():
        assert len(messages) <= 20
        for m in messages:
            check_message(m, room_id)
        stamps = [m["timestamp"] for m in messages]
        assert stamps == sorted(stamps, reverse=True), "bulk lists are newest first"


def system_state(username, room_id, recent, prompt, size=400_000):
    """What useRyoChat sends: the whole desktop, here with ~400 KB of TextEdit markdown."""
    paragraph = "## Notes\n\nThe quick brown fox jumps over the lazy dog. *Lorem ipsum* dolor sit amet, `code` & more.\n\n"
    markdown = (paragraph * (size // len(paragraph) + 1))[:size]
    return {
        "username": username, "userOS": "macOS", "locale": "en", "theme": "macosx",
        "userLocalTime": {"timeString": "3:04 PM", "dateString": "Monday, August 18, 2026", "timeZone": "Europe/Paris"},
        "runningApps": {"foreground": {"appId": "chats", "title": "Chats"}, "background": [{"appId": "textedit"}]},
        "internetExplorer": {}, "video": {}, "ipod": {"currentLyrics": None}, "karaoke": {}, "tv": {},
        "textEdit": {"instances": [{"instanceId": "te-1", "filePath": "/Documents/notes.md", "title": "notes.md",
                                    "contentMarkdown": markdown, "hasUnsavedChanges": True}]},
        "chatRoomContext": {"roomId": room_id, "recentMessages": recent, "mentionedMessage": prompt},
    }


def upstreams_hit(site, browser):
    return {u for u in browser.upstreams if u in site.worker_addrs}


# ---------------------------------------------------------------------------------------------------------------------
# The tests


def test_nginx_ryos_config_validates_and_serves_the_spa(site):
    b = Browser(site)
    r = b.s.get(site.origin + "/")
    assert r.status_code == 200 and "ryOS" in r.text and "X-Upstream" not in r.headers
    r = b.s.get(site.origin + "/chats/some/deep/route")
    assert r.status_code == 200 and '<div id="root">' in r.text, "SPA routes fall back to index.html"
    r = b.s.get(site.origin + "/assets/index-abc123.js")
    assert r.status_code == 200 and "immutable" in r.headers.get("Cache-Control", "")
    assert b.s.get(site.origin + "/assets/missing.js").status_code == 404
    # /api/, /app-config.js, /ws go to the workers.
    assert b.s.get(site.origin + "/api/rooms").headers.get("X-Upstream") in site.worker_addrs
    assert b.s.get(site.origin + "/app-config.js").headers.get("X-Upstream") in site.worker_addrs
    # The deployment values of the template's header comment render to a valid config too.
    d = tempfile.mkdtemp(prefix="presence-test-nginx-ryos-t-")
    try:
        conf = os.path.join(d, "nginx.conf")
        open(conf, "w").write(render_ryos_nginx("80", d, ["127.0.0.1:8101", "127.0.0.1:8102"], "/srv/ryos/dist"))
        text = open(conf).read()
        assert "root /srv/ryos/dist;" in text and "try_files $uri /index.html;" in text and "client_max_body_size 2m;" in text
        out = subprocess.run(["nginx", "-t", "-p", d, "-c", conf], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_ryos_chats_ui_sequence_through_nginx_on_two_workers(site):
    r = site.redis()

    # --- Bob: signed up earlier in his own browser; this page load finds his cookie. ----------------------------------
    bob = Browser(site)
    boot(bob)
    reg = bob.post("/api/auth/register", {"username": "bob", "password": PASSWORD}, expect=201)
    assert reg.json()["user"] == {"username": "bob"} and reg.json()["username"] == "bob", reg.text
    assert_cookie_set(reg, "bob")
    config, rooms = boot(bob, expect_user="bob")
    public_ids = [x["id"] for x in rooms if x.get("type", "public") == "public"]
    bob_ws, t = bob.open_socket(config)
    assert t.status_code == 200, t.text
    bob_ws.subscribe("private-chats-bob", *(f"room-{i}" for i in public_ids), "presence-global")
    ready(site, bob_ws, "private-chats-bob", "room-general", "presence-global")
    assert bob.post("/api/presence/heartbeat", headers={"Content-Type": "application/json"}).json() == {"success": True}
    assert "bob" in bob.get("/api/presence/heartbeat").json()["users"]

    # --- A visitor, never signed in: chats-public and the public rooms on a ticketless socket. -----------------------
    visitor = Browser(site)
    vconfig, _ = boot(visitor)
    visitor_ws, t = visitor.open_socket(vconfig)
    assert t.status_code == 401, f"an anonymous ticket request: {t.status_code} {t.text}"
    visitor_ws.subscribe("chats-public", *(f"room-{i}" for i in public_ids))
    ready(site, visitor_ws, "chats-public", "room-general")

    # --- Alice. 1. App boot. -----------------------------------------------------------------------------------------
    alice = Browser(site)
    config, rooms = boot(alice)
    assert config["realtimeProvider"] == "local" and config["websocketPath"] == "/ws", config
    assert config.get("appPublicOrigin") in (None, site.origin), config
    assert config["websocketUrl"] in (None, f"{site.ws_origin}/ws"), config
    # 2. Open Chats, anonymous: the ticket is refused, the socket opens without one (public channels only).
    alice_ws, t = alice.open_socket(config)
    assert t.status_code == 401, t.text
    alice_ws.subscribe("chats-public", *(f"room-{i}" for i in public_ids))
    alice_ws.ping()

    # 3. Sign up ("Alice" is lowercased); the same name with its own password signs in again (200).
    reg = alice.post("/api/auth/register", {"username": "Alice", "password": PASSWORD}, expect=201)
    body = reg.json()
    assert body["user"] == {"username": "alice"} and body["username"] == "alice", body
    token = assert_cookie_set(reg, "alice")
    assert body["token"] == token
    again = alice.post("/api/auth/register", {"username": "alice", "password": PASSWORD}, expect=200)
    assert again.json()["user"] == {"username": "alice"}, again.text
    assert_cookie_set(again, "alice")
    assert alice.call("POST", "/api/auth/register", {"username": "alice", "password": "not-her-password"}).status_code == 409
    # The session again: authenticated, and the cookie's Max-Age refreshed.
    s = alice.get("/api/auth/session")
    assert {k: s.json()[k] for k in ("authenticated", "username", "expired")} == {
        "authenticated": True, "username": "alice", "expired": False}, s.text
    assert_cookie_set(s, "alice")
    # The ticketless socket may not carry her private channel; a new socket (every reconnect mints a ticket) may.
    alice_ws.subscribe("private-chats-alice")
    f = alice_ws.frame(lambda f: f.get("type") == "subscription_error", what="subscription_error")
    assert f == {"type": "subscription_error", "channel": "private-chats-alice"}, f
    alice_ws.close()
    alice_ws, t = alice.open_socket(config)
    assert t.status_code == 200, t.text
    alice_ws.subscribe("private-chats-alice", *(f"room-{i}" for i in public_ids), "presence-global")
    ready(site, alice_ws, "private-chats-alice", "room-general", "presence-global")
    # Channel auth for the pusher provider, with the cookie: presence-global carries {"user_id"}.
    a = alice.post("/api/pusher/auth", {"socket_id": "123.456", "channel_name": "presence-global"}).json()
    assert re.fullmatch(rf"{KEY}:[0-9a-f]{{64}}", a["auth"]) and json.loads(a["channel_data"]) == {"user_id": "alice"}, a
    assert alice.post("/api/pusher/auth", {"socket_id": "123.456", "channel_name": "private-chats-alice"}).json()["auth"]
    assert alice.call("POST", "/api/pusher/auth", {"socket_id": "123.456", "channel_name": "private-chats-bob"}).status_code == 403
    # Global presence: POST (no body) → user-heartbeat on presence-global; GET lists who was seen.
    hb = alice.post("/api/presence/heartbeat", headers={"Content-Type": "application/json"})
    assert hb.json() == {"success": True}, hb.text
    data = bob_ws.event("presence-global", "user-heartbeat", lambda d: d.get("username") == "alice")
    assert set(data) == {"username", "timestamp"} and isinstance(data["timestamp"], int), data
    users = alice.get("/api/presence/heartbeat").json()["users"]
    assert {"alice", "bob"} <= set(users) and all(isinstance(u, str) for u in users), users

    # 4. Select "general": the switch body has no username; then the rooms again and the room's messages.
    sw = alice.post("/api/presence/switch", {"previousRoomId": None, "nextRoomId": "general"})
    assert sw.json() == {"success": True}, sw.text
    data = bob_ws.event("room-general", "presence-update", lambda d: d.get("username") == "alice")
    assert data["action"] == "joined" and data["roomId"] == "general" and data["userCount"] >= 1, data
    data = visitor_ws.event("chats-public", "room-updated", lambda d: d.get("room", {}).get("id") == "general")
    assert data["room"]["userCount"] >= 1 and data["room"]["name"] == "general", data
    assert alice.post("/api/presence/switch", {"previousRoomId": "general", "nextRoomId": "general"}).json() == {
        "success": True, "noop": True}
    rooms = alice.get("/api/rooms").json()["rooms"]
    assert next(x for x in rooms if x["id"] == "general")["userCount"] >= 1
    assert isinstance(alice.get("/api/rooms/general/messages").json()["messages"], list)

    # 5. Type.
    assert alice.post("/api/rooms/general/typing", {"isTyping": True}).json() == {"success": True}
    assert bob_ws.event("room-general", "user-typing", lambda d: d.get("username") == "alice") == {
        "username": "alice", "isTyping": True}

    # 6. Send: the content is escaped on the server and reads back as typed after the UI's entity decoding.
    typed = 'a < b & "c" \'d\' >'
    sent = alice.post("/api/rooms/general/messages", {"content": typed}, expect=201).json()["message"]
    check_message(sent, "general", "alice", typed)
    assert sent["content"] == "a &lt; b &amp; &quot;c&quot; &#039;d&#039; &gt;", sent
    data = bob_ws.event("room-general", "room-message", lambda d: d.get("message", {}).get("id") == sent["id"])
    assert data["roomId"] == "general" and data["message"] == sent, data
    visitor_ws.event("room-general", "room-message", lambda d: d.get("message", {}).get("id") == sent["id"])
    history = alice.get("/api/rooms/general/messages").json()["messages"]
    assert [m for m in history if m["id"] == sent["id"]] == [sent], history[-3:]
    check_bulk(alice.get("/api/messages/bulk?roomIds=general,random").json(), ["general", "random"], [])

    # 7. @ryo: the message, then ryo-reply with the whole desktop (~400 KB) in parallel; the reply comes as room-message.
    prompt = "what do you think?"
    mention = alice.post("/api/rooms/general/messages", {"content": f"@ryo {prompt}"}, expect=201).json()["message"]
    bob_ws.event("room-general", "room-message", lambda d: d["message"]["id"] == mention["id"])
    state = system_state("alice", "general", f"alice: {typed}\nalice: @ryo {prompt}", prompt)
    payload = {"roomId": "general", "prompt": prompt, "systemState": state}
    assert len(json.dumps(payload)) > 400_000
    reply = alice.post("/api/ai/ryo-reply", payload, expect=201).json()
    assert reply["message"]["username"] == "ryo" and reply["message"]["roomId"] == "general", reply
    data = bob_ws.event("room-general", "room-message", lambda d: d["message"]["username"] == "ryo")
    assert data["message"]["isAI"] is True and data["message"]["id"] == reply["message"]["id"], data
    check_message(data["message"], "general", "ryo")
    alice_ws.event("room-general", "room-message", lambda d: d["message"]["id"] == reply["message"]["id"])

    # 12. The admin ryo deletes a message (from his own browser); others may not.
    ryo = Browser(site)
    login = ryo.post("/api/auth/login", {"username": "ryo", "password": RYO_PASSWORD})
    assert login.json()["username"] == "ryo", login.text
    assert_cookie_set(login, "ryo")
    assert alice.call("DELETE", f"/api/rooms/general/messages/{mention['id']}").status_code == 403
    assert ryo.call("DELETE", f"/api/rooms/general/messages/{sent['id']}", expect=200).json() == {"success": True}
    assert bob_ws.event("room-general", "message-deleted", lambda d: d.get("messageId") == sent["id"]) == {
        "roomId": "general", "messageId": sent["id"]}
    ids = [m["id"] for m in alice.get("/api/rooms/general/messages").json()["messages"]]
    assert sent["id"] not in ids and mention["id"] in ids

    # 8. The "@ryo" pane: the room is left.
    assert alice.post("/api/presence/switch", {"previousRoomId": "general", "nextRoomId": None}).json() == {"success": True}
    data = bob_ws.event("room-general", "presence-update", lambda d: d.get("username") == "alice" and d.get("action") == "left")
    assert data["roomId"] == "general" and isinstance(data["userCount"], int), data
    assert not r.exists("room:{general}:presence:alice")

    # 11. A private room: search, create without a name; both members hear of it on private-chats-<member>.
    found = alice.get("/api/users?search=bo").json()["users"]
    assert "bob" in [u["username"] for u in found], found
    created = alice.post("/api/rooms", {"type": "private", "members": ["bob"]}, expect=201).json()["room"]
    pid = created["id"]
    assert created["name"] == "@alice, @bob" and created["type"] == "private", created
    assert sorted(created["members"]) == ["alice", "bob"], created
    assert isinstance(created["userCount"], int) and isinstance(created["createdAt"], int), created
    for ws, channel in ((bob_ws, "private-chats-bob"), (alice_ws, "private-chats-alice")):
        f = ws.frame(lambda f: f.get("type") == "event" and f.get("channel") == channel
                     and f.get("event") in ("room-created", "room-updated") and f["data"].get("room", {}).get("id") == pid,
                     what=f"room-created/updated on {channel}")
        assert f["data"]["room"]["name"] == "@alice, @bob", f
    visitor_ws.no_event("chats-public", "room-updated", lambda d: d.get("room", {}).get("id") == pid)
    assert pid in [x["id"] for x in bob.get("/api/rooms").json()["rooms"]]
    assert pid not in [x["id"] for x in visitor.get("/api/rooms").json()["rooms"]]
    # Each browser subscribes to the private room's channel (its ticket user is a member); the visitor may not.
    bob_ws.subscribe(f"private-room-{pid}")
    alice_ws.subscribe(f"private-room-{pid}")
    ready(site, bob_ws, f"private-room-{pid}")
    visitor_ws.subscribe(f"private-room-{pid}")
    f = visitor_ws.frame(lambda f: f.get("type") == "subscription_error", what="subscription_error")
    assert f == {"type": "subscription_error", "channel": f"private-room-{pid}"}, f
    # The UI switches into the new room and talks there.
    assert alice.post("/api/presence/switch", {"previousRoomId": None, "nextRoomId": pid}).json() == {"success": True}
    data = bob_ws.event(f"private-room-{pid}", "presence-update", lambda d: d.get("username") == "alice")
    assert data["action"] == "joined", data
    bob_ws.event("private-chats-bob", "room-updated", lambda d: d.get("room", {}).get("id") == pid)
    dm = alice.post(f"/api/rooms/{pid}/messages", {"content": "psst <b>bob</b>"}, expect=201).json()["message"]
    data = bob_ws.event(f"private-room-{pid}", "room-message", lambda d: d["message"]["id"] == dm["id"])
    check_message(data["message"], pid, "alice", "psst <b>bob</b>")
    assert bob.post(f"/api/rooms/{pid}/typing", {"isTyping": True}).json() == {"success": True}
    assert alice_ws.event(f"private-room-{pid}", "user-typing", lambda d: d["username"] == "bob")["isTyping"] is True
    check_bulk(alice.get(f"/api/messages/bulk?roomIds={pid},general,nosuchroom").json(), [pid, "general"], ["nosuchroom"])
    check_bulk(visitor.get(f"/api/messages/bulk?roomIds={pid},general").json(), ["general"], [pid])

    # 9. Leave the private room: with one member left it is gone, for both.
    assert alice.call("DELETE", f"/api/rooms/{pid}", expect=200).json() == {"success": True}
    assert bob_ws.event("private-chats-bob", "room-deleted", lambda d: d.get("roomId") == pid) == {"roomId": pid}
    alice_ws.event("private-chats-alice", "room-deleted", lambda d: d.get("roomId") == pid)
    assert pid not in [x["id"] for x in alice.get("/api/rooms").json()["rooms"]]

    # 10. Log out: the cookie is cleared, the rooms are fetched anonymously, the next session is signed out.
    old_cookie = alice.cookie
    out = alice.post("/api/auth/logout", headers={"Content-Type": "application/json"})
    assert out.json() == {"success": True, "message": "Logged out successfully"}, out.text
    assert_cookie_cleared(out)
    assert alice.cookie is None
    assert all(x.get("type", "public") == "public" for x in alice.get("/api/rooms").json()["rooms"])
    assert alice.get("/api/auth/session").json() == {"authenticated": False}
    # The old cookie (another tab still holding it) is refused and cleared.
    alice.s.cookies.set("ryos_auth", old_cookie, domain="127.0.0.1", path="/api")
    stale = alice.get("/api/auth/session")
    assert stale.json() == {"authenticated": False}, stale.text
    assert_cookie_cleared(stale)
    assert alice.call("POST", "/api/rooms/general/messages", {"content": "after logout"}).status_code == 401

    # Alice's requests were spread over both workers by nginx, and no browser ever sent an auth header.
    assert upstreams_hit(site, alice) == site.worker_addrs, alice.upstreams
    for b in (alice, bob, visitor, ryo):
        b.close()


def test_auth_login_token_verify_logout_all(site):
    first = Browser(site)
    reg = first.post("/api/auth/register", {"username": "carol", "password": PASSWORD}, expect=201)
    assert_cookie_set(reg, "carol")
    second = Browser(site)
    login = second.post("/api/auth/login", {"username": "Carol", "password": PASSWORD})
    assert set(login.json()) >= {"username", "token"} and login.json()["username"] == "carol", login.text
    token = assert_cookie_set(login, "carol")
    assert login.json()["token"] == token
    assert second.call("POST", "/api/auth/login", {"username": "carol", "password": "wrong-password"}).status_code == 401

    # "Log in with token": verify sets the cookie for that token.
    third = Browser(site)
    v = third.post("/api/auth/token/verify", {"username": "carol", "token": token})
    assert v.json() == {"valid": True, "username": "carol", "message": "Token is valid"}, v.text
    assert assert_cookie_set(v, "carol") == token
    assert third.get("/api/auth/session").json()["username"] == "carol"
    bad = third.call("POST", "/api/auth/token/verify", {"username": "carol", "token": "0" * 64})
    assert bad.status_code == 401 and bad.json() == {"error": "Invalid authentication token"}, bad.text
    missing = third.call("POST", "/api/auth/token/verify", {"username": "carol"})
    assert missing.status_code == 400 and missing.json() == {"error": "Username and token are required"}, missing.text

    # Every /api route reads the cookie alone.
    assert second.post("/api/presence/switch", {"previousRoomId": None, "nextRoomId": "random"}).json() == {"success": True}
    assert second.post("/api/rooms/random/messages", {"content": "hi"}, expect=201).json()["message"]["username"] == "carol"

    # logout-all: every session of the user ends (first: register, second: login; third shares second's token).
    out = first.post("/api/auth/logout-all", headers={"Content-Type": "application/json"})
    assert out.json() == {"success": True, "message": "Logged out from 2 devices", "deletedCount": 2}, out.text
    assert_cookie_cleared(out)
    for b in (first, second, third):
        assert b.get("/api/auth/session").json() == {"authenticated": False}
    assert second.call("POST", "/api/presence/heartbeat", headers={"Content-Type": "application/json"}).status_code == 401


def test_secure_cookie_and_runtime_config_for_an_https_origin(make_cluster):
    c = make_cluster(1, ADMIN_USERS="ryo", ADMIN_PASSWORD=RYO_PASSWORD, APP_PUBLIC_ORIGIN="https://os.example",
                     ALLOWED_ORIGINS="https://os.example", REALTIME_PROVIDER="local")
    h = {"Origin": "https://os.example"}
    r = requests.post(c.a.base + "/api/auth/register", json={"username": "dave", "password": PASSWORD}, headers=h, timeout=30)
    assert r.status_code == 201, r.text
    assert_cookie_set(r, "dave", secure=True)
    js = requests.get(c.a.base + "/app-config.js", timeout=30).text
    config = json.loads(re.search(r"=\s*(\{.*\})", js, re.S).group(1))
    assert config["appPublicOrigin"] == "https://os.example" and config["realtimeProvider"] == "local", config
    assert config["websocketUrl"] in ("wss://os.example/ws", None) and config["websocketPath"] == "/ws", config


class PysherClient:
    """pysher pointed at our Pusher-protocol socket, as pusher-js would be with wsHost/wsPort/forceTLS:false; private
    and presence channels authorised by the browser's cookie at /api/pusher/auth (ryOS's JSON authorizer)."""

    def __init__(self, host, port, browser):
        self.browser = browser
        self.events = queue.Queue()
        self.backlog = []
        self.pusher = pysher.Pusher(KEY, custom_host=host, port=port, secure=False)
        connected = threading.Event()
        self.pusher.connection.bind("pusher:connection_established", lambda data: connected.set())
        self.pusher.connect()
        assert connected.wait(30), "no pusher:connection_established"

    def authorize(self, channel, expect=200):
        return self.browser.post("/api/pusher/auth", {"socket_id": self.pusher.connection.socket_id,
                                                      "channel_name": channel}, expect=expect)

    def subscribe(self, channel, events):
        names = list(events) + ["pusher_internal:subscription_succeeded"]
        if channel.startswith("presence-"):
            a = self.authorize(channel).json()
            self.pusher.connection.send_event("pusher:subscribe", {"channel": channel, "auth": a["auth"],
                                                                   "channel_data": a["channel_data"]})
            ch = pysher.channel.Channel(channel, self.pusher.connection)
            self.pusher.channels[channel] = ch
        elif channel.startswith("private-"):
            ch = self.pusher.subscribe(channel, auth=self.authorize(channel).json()["auth"])
        else:
            ch = self.pusher.subscribe(channel)
        for name in names:
            ch.bind(name, lambda data=None, name=name, channel=channel: self.events.put((channel, name, data)))
        self.wait_for(channel, "pusher_internal:subscription_succeeded")

    def wait_for(self, channel, name, match=lambda d: True, timeout=30.0):
        def pred(e):
            if e[0] != channel or e[1] != name:
                return False
            data = json.loads(e[2]) if isinstance(e[2], str) and e[2][:1] in "{[" else e[2]
            return match(data)
        for i, e in enumerate(self.backlog):
            if pred(e):
                self.backlog.pop(i)
                return json.loads(e[2]) if isinstance(e[2], str) and e[2][:1] in "{[" else e[2]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                e = self.events.get(timeout=0.1)
            except queue.Empty:
                continue
            if pred(e):
                return json.loads(e[2]) if isinstance(e[2], str) and e[2][:1] in "{[" else e[2]
            self.backlog.append(e)
        raise AssertionError(f"{name} on {channel} not received; got {self.backlog[-20:]}")

    def close(self):
        conn = self.pusher.connection
        conn.disconnect_called = True
        conn.needs_reconnect = False
        try:
            conn.socket.close()
        except Exception:
            pass


def test_pusher_provider_path_with_pysher(make_site):
    site = make_site(provider="pusher")
    bob = Browser(site)
    config = bob.app_config()
    assert config["realtimeProvider"] == "pusher" and config["pusher"]["key"] == KEY, config
    bob.post("/api/auth/register", {"username": "bob", "password": PASSWORD}, expect=201)
    alice = Browser(site)
    alice.post("/api/auth/register", {"username": "alice", "password": PASSWORD}, expect=201)

    # Straight at one worker's /app/<key> (wsHost/wsPort/forceTLS:false), and through nginx's /app/ location.
    worker_port = int(site.cluster.a.base.rsplit(":", 1)[1])
    direct = PysherClient("127.0.0.1", worker_port, bob)
    via_nginx = PysherClient("127.0.0.1", site.nginx.port, bob)
    direct.subscribe("private-chats-bob", ["room-updated", "room-created"])
    direct.subscribe("room-general", ["room-message", "presence-update", "user-typing"])
    direct.subscribe("presence-global", ["user-heartbeat"])
    via_nginx.subscribe("room-general", ["room-message"])
    assert direct.authorize("private-chats-alice", expect=403).status_code == 403
    a = direct.authorize("presence-global").json()
    assert json.loads(a["channel_data"]) == {"user_id": "bob"}, a

    assert alice.post("/api/presence/switch", {"previousRoomId": None, "nextRoomId": "general"}).json() == {"success": True}
    data = direct.wait_for("room-general", "presence-update", lambda d: d.get("username") == "alice")
    assert data["action"] == "joined", data
    m = alice.post("/api/rooms/general/messages", {"content": "hello <pusher> & co"}, expect=201).json()["message"]
    data = direct.wait_for("room-general", "room-message", lambda d: d["message"]["id"] == m["id"])
    check_message(data["message"], "general", "alice", "hello <pusher> & co")
    via_nginx.wait_for("room-general", "room-message", lambda d: d["message"]["id"] == m["id"])
    assert alice.post("/api/rooms/general/typing", {"isTyping": True}).json() == {"success": True}
    direct.wait_for("room-general", "user-typing", lambda d: d["username"] == "alice")
    alice.post("/api/presence/heartbeat", headers={"Content-Type": "application/json"})
    data = direct.wait_for("presence-global", "user-heartbeat", lambda d: d["username"] == "alice")
    assert isinstance(data["timestamp"], int)
    room = alice.post("/api/rooms", {"type": "private", "members": ["bob"]}, expect=201).json()["room"]
    direct.wait_for("private-chats-bob", "room-updated", lambda d: d["room"]["id"] == room["id"])
    # The AI's reply reaches the pusher client too.
    reply = alice.post("/api/ai/ryo-reply", {"roomId": "general", "prompt": "hi", "systemState": {}}, expect=201).json()
    data = direct.wait_for("room-general", "room-message", lambda d: d["message"]["username"] == "ryo")
    assert data["message"]["id"] == reply["message"]["id"] and data["message"]["isAI"] is True
    direct.close()
    via_nginx.close()


def test_csrf_cookie_writes_need_an_allowed_origin_or_referer(site):
    r = site.redis()
    alice = Browser(site)
    token = alice.post("/api/auth/register", {"username": "alice", "password": PASSWORD}, expect=201).json()["token"]
    cookie = alice.cookie

    def forged(origin=None, referer=None, host=None):
        s = requests.Session()  # the same cookie, sent by a page the user did not mean to use
        s.headers["Cookie"] = f"ryos_auth={cookie}"
        if origin:
            s.headers["Origin"] = origin
        if referer:
            s.headers["Referer"] = referer
        if host:
            s.headers["Host"] = host
        return s

    def refused(s, method, path, body=None):
        resp = s.request(method, site.origin + path, json=body, timeout=30)
        assert resp.status_code == 403 and resp.json() == {"error": "Unauthorized"}, f"{method} {path}: {resp.status_code} {resp.text}"
        assert not cookies_of(resp) or all(v for v, _ in cookies_of(resp)), "a refused request must not clear the cookie"

    for s in (forged(origin=FOREIGN), forged(), forged(referer=FOREIGN + "/page")):
        refused(s, "POST", "/api/rooms/general/messages", {"content": "csrf-message"})
        refused(s, "POST", "/api/presence/switch", {"previousRoomId": None, "nextRoomId": "general"})
        refused(s, "POST", "/api/rooms", {"type": "private", "members": ["ryo"]})
        refused(s, "POST", "/api/auth/logout")
        refused(s, "POST", "/api/auth/logout-all")
        refused(s, "POST", "/api/presence/heartbeat")
        refused(s, "DELETE", "/api/rooms/general")
    # Nothing changed: no message, no presence, no room, the session alive.
    assert not any("csrf" in m["content"] for m in alice.get("/api/rooms/general/messages").json()["messages"])
    assert not r.exists("room:{general}:presence:alice")
    assert all(x.get("type", "public") == "public" for x in alice.get("/api/rooms").json()["rooms"])
    assert "alice" not in alice.get("/api/presence/heartbeat").json()["users"]
    assert alice.get("/api/auth/session").json()["authenticated"] is True
    # Reads need no Origin; a Referer of the allowed origin is enough; the request's own host is allowed.
    s = forged()
    assert s.get(site.origin + "/api/auth/session", timeout=30).json()["username"] == "alice"
    ok = forged(referer=site.origin + "/chats").post(site.origin + "/api/rooms/general/messages",
                                                     json={"content": "by referer"}, timeout=30)
    assert ok.status_code == 201, ok.text
    own = f"localhost:{site.nginx.port}"
    ok = forged(origin=f"http://{own}", host=own).post(site.origin + "/api/rooms/general/messages",
                                                       json={"content": "same host"}, timeout=30)
    assert ok.status_code == 201, ok.text
    # API clients (Bearer + X-Username, no cookie) are not browsers: no Origin needed, as before.
    api = requests.post(site.origin + "/api/rooms/general/messages", json={"content": "by api"}, timeout=30,
                        headers={"Authorization": f"Bearer {token}", "X-Username": "alice"})
    assert api.status_code == 201, api.text
    contents = [m["content"] for m in alice.get("/api/rooms/general/messages").json()["messages"]]
    assert {"by referer", "same host", "by api"} <= set(contents) and not any("csrf" in c for c in contents)


def test_presence_key_has_native_ttl(make_site):
    ttl = 6
    site = make_site(CHAT_PRESENCE_TTL=ttl)
    r = site.redis()
    alice = Browser(site)
    alice.post("/api/auth/register", {"username": "alice", "password": PASSWORD}, expect=201)
    key = "room:{general}:presence:alice"

    alice.post("/api/presence/switch", {"previousRoomId": None, "nextRoomId": "general"})
    after_join = r.pttl(key)
    assert 0 < after_join <= ttl * 1000, f"PTTL {key} after the join: {after_join}"
    assert 0 < r.ttl(key) <= ttl

    # Let it run down, then a heartbeat (the UI's, no body) pushes it back.
    assert wait_until(lambda: 0 < r.pttl(key) < ttl * 1000 - 2500, 30, 0.1), f"PTTL stays at {r.pttl(key)}"
    before = r.pttl(key)
    assert alice.post("/api/presence/heartbeat", headers={"Content-Type": "application/json"}).json() == {"success": True}
    after = r.pttl(key)
    assert before + 1000 < after <= ttl * 1000, f"PTTL {before} before the heartbeat, {after} after"

    # A leave deletes it.
    alice.post("/api/presence/switch", {"previousRoomId": "general", "nextRoomId": None})
    assert r.pttl(key) == -2 and not r.exists(key)

    # An abandoned presence expires on its own, and its leave is announced.
    alice.post("/api/presence/switch", {"previousRoomId": None, "nextRoomId": "random"})
    abandoned = "room:{random}:presence:alice"
    assert r.exists(abandoned)
    assert wait_until(lambda: not r.exists(abandoned), ttl + 30, 0.2), f"{abandoned} still there, PTTL {r.pttl(abandoned)}"
    count = lambda: next(x for x in alice.get("/api/rooms").json()["rooms"] if x["id"] == "random")["userCount"]
    assert wait_until(lambda: count() == 0, 30, 0.25)
    # The tab becomes visible again: its heartbeat brings back the presence in the room it shows.
    assert alice.post("/api/presence/heartbeat", headers={"Content-Type": "application/json"}).json() == {"success": True}
    assert 0 < r.pttl(abandoned) <= ttl * 1000 and count() == 1


def test_support_seed_flow_metadata_first(make_cluster):
    """The seed's order (/work/shared/seeds/000_*): an agent sets the metadata first, then the customer joins."""
    c = make_cluster(2, ADMIN_USERS="ryo", ADMIN_PASSWORD=RYO_PASSWORD, SUPPORT_PRESENCE_TTL=45)
    a, b = c.a, c.b

    def account(name, worker=a):
        resp = worker.call("POST", "/api/auth/register", json={"username": name, "password": PASSWORD})
        assert resp.status_code == 201, resp.text
        return User(resp.json()["username"], resp.json()["token"])

    login = a.call("POST", "/api/auth/login", json={"username": "ryo", "password": RYO_PASSWORD})
    assert login.status_code == 200, login.text
    ryo = User("ryo", login.json()["token"])
    agent, cust, other = account("agent1"), account("cust1"), account("cust2")
    assert a.call("PUT", "/api/admin/agents/agent1", user=ryo).status_code == 200

    # 1. metadata by an agent opens the ticket.
    m = a.call("POST", "/support/T-1/metadata", user=agent,
               json={"priority": "high", "assignedAgentId": "agent1", "status": "open"})
    assert m.status_code == 200, m.text
    assert m.json()["room"]["metadata"] == {"ticketId": "T-1", "priority": "high", "assignedAgentId": "agent1",
                                           "status": "open"}, m.text
    # 2. The first customer takes the seat; a second one may not; the agent joins as agent.
    j = b.call("POST", "/support/T-1/join", user=cust, json={"role": "customer"})
    assert j.status_code == 200, j.text
    assert j.json()["member"]["username"] == "cust1" and j.json()["member"]["metadata"] == {"role": "customer"}
    assert b.call("POST", "/support/T-1/join", user=cust, json={"role": "customer"}).status_code == 200  # rejoin
    assert a.call("POST", "/support/T-1/join", user=other, json={"role": "customer"}).status_code == 403
    assert a.call("POST", "/support/T-1/join", user=agent, json={"role": "agent"}).status_code == 200
    # 3. typing, members, messages, as the seed continues.
    assert b.call("POST", "/support/T-1/typing", user=cust, json={"typing": True}).json() == {
        "presence": {"status": "online", "typing": True}}
    members = a.call("GET", "/support/T-1/members", user=agent).json()["members"]
    assert [x["username"] for x in members] == ["cust1", "agent1"], members
    assert b.call("POST", "/support/T-1/messages", user=cust, json={"content": "my order is late"}).status_code == 201
    assert a.call("POST", "/support/T-1/messages", user=agent, json={"content": "on it"}).status_code == 201
    assert a.call("GET", "/support/T-1/messages", user=other).status_code == 403
    # 4. close: the transcript stays; no new customer after close.
    closed = a.call("POST", "/support/T-1/close", user=agent, json={"deleteHistory": False, "deleteSnapshots": False})
    assert closed.status_code == 200 and closed.json()["historyKept"] is True, closed.text
    assert [x["content"] for x in b.call("GET", "/support/T-1/messages", user=cust).json()["messages"]] == [
        "my order is late", "on it"]
    late = b.call("POST", "/support/T-1/join", user=cust, json={"role": "customer"})
    assert late.status_code == 410 and late.json() == {"error": "Room closed"}, late.text
    assert b.call("POST", "/support/T-1/join", user=other, json={"role": "customer"}).status_code in (403, 410)

    # An agent names the customer in advance: the seat is locked to that user.
    m = a.call("POST", "/support/T-2/metadata", user=agent, json={"priority": "low", "customerId": "cust2"})
    assert m.status_code == 200 and m.json()["room"]["customerId"] == "cust2", m.text
    assert b.call("POST", "/support/T-2/join", user=cust, json={"role": "customer"}).status_code == 403
    assert b.call("POST", "/support/T-2/join", user=other, json={"role": "customer"}).status_code == 200

    # The admin (ryo) may open a ticket too; closed before any customer came, it takes none.
    assert a.call("POST", "/support/T-3/metadata", user=ryo, json={"status": "open"}).status_code == 200
    assert a.call("POST", "/support/T-3/close", user=ryo, json={}).status_code == 200
    late = b.call("POST", "/support/T-3/join", user=cust, json={"role": "customer"})
    assert late.status_code == 410 and late.json() == {"error": "Room closed"}, late.text
