"""Pusher compatibility with real clients from PyPI: pysher (WebSocket) and pusher (HTTP API), two workers."""
import json
import queue
import signal
import threading
import time

import pusher
import pysher
import pytest
import websocket

from conftest import Cluster, RedisProcess, Subscription, Worker, default_settings, register

KEY, SECRET, APP = "test-key", "test-secret-123", "4242"


@pytest.fixture
def rt(make_cluster):
    return make_cluster(2, PUSHER_KEY=KEY, PUSHER_SECRET=SECRET, PUSHER_APP_ID=APP, CHAT_PRESENCE_TTL=3, SWEEP_INTERVAL_MS=250)


class Client:
    """A pysher client with every event it receives collected in a queue."""

    def __init__(self, worker, user=None):
        port = int(worker.base.rsplit(":", 1)[1])
        headers = {}
        if user:
            headers = {"Authorization": f"Bearer {user.token}", "X-Username": user.name}
        self.events = queue.Queue()
        self.backlog = []
        self.pusher = pysher.Pusher(KEY, custom_host="127.0.0.1", port=port, secure=False,
                                    auth_endpoint=worker.base + "/pusher/auth", auth_endpoint_headers=headers,
                                    user_data={"user_id": user.name, "user_info": {"username": user.name}} if user else {})
        self.connected = threading.Event()
        self.pusher.connection.bind("pusher:connection_established", lambda data: self.connected.set())
        self.pusher.connect()
        assert self.connected.wait(10), "no pusher:connection_established"

    def subscribe(self, channel, events):
        ch = self.pusher.subscribe(channel)
        for name in events:
            ch.bind(name, lambda data, name=name, channel=channel: self.events.put((channel, name, data)))
        return ch

    def wait_for(self, predicate, timeout=5.0):
        """The first event (received so far or within `timeout`) matching `predicate`; others stay for later."""
        for i, item in enumerate(self.backlog):
            if predicate(item):
                return self.backlog.pop(i)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                item = self.events.get(timeout=0.1)
            except queue.Empty:
                continue
            if predicate(item):
                return item
            self.backlog.append(item)
        raise AssertionError(f"expected event not received; got {self.backlog}")

    def close(self):
        # pysher's disconnect() joins its thread without a timeout and lingers ~100 s in websocket-client's loop;
        # closing the socket is what matters to the server.
        conn = self.pusher.connection
        conn.disconnect_called = True
        conn.needs_reconnect = False
        conn.socket.close()


def switch(worker, user, prev, nxt):
    return worker.call("POST", "/api/presence/switch", user=user,
                       json={"previousRoomId": prev, "nextRoomId": nxt, "username": user.name})


def test_pysher_receives_events_made_on_the_other_worker(rt):
    a, b = rt.a, rt.b
    alice, bob = register(a, "alice"), register(a, "bobby")
    client = Client(a, alice)
    names = ["room-updated", "presence-update", "room-message", "pusher_internal:subscription_succeeded"]
    for channel in ["chats-public", "room-general", "private-chats-alice", "presence-room-general"]:
        client.subscribe(channel, names)
    for channel in ["chats-public", "room-general", "private-chats-alice", "presence-room-general"]:
        client.wait_for(lambda e, c=channel: e[0] == c and e[1] == "pusher_internal:subscription_succeeded")

    assert switch(b, bob, None, "general").status_code == 200
    _, _, data = client.wait_for(lambda e: e[0] == "room-general" and e[1] == "presence-update" and "bobby" in e[2])
    assert json.loads(data) == {"roomId": "general", "username": "bobby", "action": "joined", "userCount": 2}
    client.wait_for(lambda e: e[0] == "chats-public" and e[1] == "room-updated" and json.loads(e[2])["room"]["id"] == "general")

    r = b.call("POST", "/api/ai/ryo-reply", user=bob, json={"roomId": "general", "prompt": "hey ryo"})
    assert r.status_code == 201
    _, _, data = client.wait_for(lambda e: e[0] == "room-general" and e[1] == "room-message")
    assert json.loads(data)["message"] == r.json()["message"]

    dm = b.call("POST", "/api/rooms", user=bob, json={"name": "dm", "type": "private", "members": ["alice"]}).json()["room"]
    _, _, data = client.wait_for(lambda e: e[0] == "private-chats-alice" and e[1] == "room-updated")
    assert json.loads(data)["room"]["id"] == dm["id"]
    client.close()


def test_a_switch_between_public_rooms_updates_both_in_one_message(rt):
    """A switch's two room-updated events on chats-public travel as one pub/sub message ({"events": [...]}); a
    Pusher client still gets two events, in order, each with its room."""
    a, b = rt.a, rt.b
    carol = register(a, "carol")
    client = Client(a, carol)
    client.subscribe("chats-public", ["room-updated", "pusher_internal:subscription_succeeded"])
    client.wait_for(lambda e: e[0] == "chats-public" and e[1] == "pusher_internal:subscription_succeeded")
    assert switch(b, carol, None, "general").status_code == 200
    client.wait_for(lambda e: e[1] == "room-updated" and json.loads(e[2])["room"]["id"] == "general")
    sub = Subscription(rt.redis(), ["chats-public"])
    assert switch(b, carol, "general", "random").status_code == 200
    first = client.wait_for(lambda e: e[1] == "room-updated")
    second = client.wait_for(lambda e: e[1] == "room-updated")
    assert [json.loads(first[2])["room"]["id"], json.loads(second[2])["room"]["id"]] == ["general", "random"]
    assert [json.loads(first[2])["room"]["userCount"], json.loads(second[2])["room"]["userCount"]] == [0, 1]
    # On the wire: one message carrying both.
    deadline, messages = time.monotonic() + 2, []
    while time.monotonic() < deadline and not messages:
        m = sub._next(timeout=0.1)
        if m and m["type"] in ("message", "smessage"):
            messages.append(json.loads(m["data"]))
    assert messages and [e["data"]["room"]["id"] for e in messages[0]["events"]] == ["general", "random"], messages
    sub.close()
    client.close()


def test_channel_auth_rules(rt):
    a = rt.a
    alice, bob = register(a, "alice"), register(a, "bobby")
    auth = lambda user, channel, sid="123.456": a.call("POST", "/pusher/auth", user=user, data={"socket_id": sid, "channel_name": channel})
    r = auth(alice, "private-chats-alice")
    assert r.status_code == 200 and r.json()["auth"].startswith(KEY + ":")
    assert auth(alice, "private-chats-bobby").status_code == 403
    assert auth(alice, "presence-room-general").json()["channel_data"] == '{"user_id": "alice", "user_info": {"username": "alice"}}'
    assert auth(alice, "private-room-nope").status_code == 403
    dm = a.call("POST", "/api/rooms", user=bob, json={"name": "dm", "type": "private", "members": []}).json()["room"]
    assert auth(alice, f"private-room-{dm['id']}").status_code == 403
    assert auth(bob, f"presence-room-{dm['id']}").status_code == 200
    assert auth(alice, "private-chats-alice", sid="nope").status_code == 400
    assert a.call("POST", "/pusher/auth", data={"socket_id": "1.2", "channel_name": "private-chats-alice"}).status_code == 401
    r = a.call("POST", "/pusher/auth", user=alice, json={"socket_id": "1.2", "channel_name": "private-chats-alice"})
    assert r.status_code == 200
    # Tickets: customer, agents, admins.
    a.call("POST", "/support/T1/join", user=alice, json={})
    assert auth(alice, "private-room-ticket_T1").status_code == 200
    assert auth(bob, "private-room-ticket_T1").status_code == 403


def raw_socket(worker, query="protocol=7&client=js&version=8.0"):
    port = int(worker.base.rsplit(":", 1)[1])
    ws = websocket.create_connection(f"ws://127.0.0.1:{port}/app/{KEY}?{query}", timeout=5)
    hello = json.loads(ws.recv())
    return ws, hello


def test_encrypted_channel_payloads_reach_the_client_unchanged_and_client_events_are_refused(rt):
    """private-encrypted-: signed by the app's server with the official library (which also derives the channel's
    shared secret from its encryption master key), triggered through the other worker with encryption; the client
    decrypts what arrives with the shared secret. The server never sees a key, and refuses client events there."""
    import base64
    import os
    import nacl.secret
    a, b = rt.a, rt.b
    backend = pusher.Pusher(app_id=APP, key=KEY, secret=SECRET, host="127.0.0.1", port=int(b.base.rsplit(":", 1)[1]),
                            ssl=False, encryption_master_key_base64=base64.b64encode(os.urandom(32)).decode())
    ws, hello = raw_socket(a)
    socket_id = json.loads(hello["data"])["socket_id"]
    channel = "private-encrypted-orders"
    auth = backend.authenticate(channel=channel, socket_id=socket_id)
    assert auth["shared_secret"]
    ws.send(json.dumps({"event": "pusher:subscribe", "data": {"channel": channel, "auth": auth["auth"]}}))
    assert json.loads(ws.recv())["event"] == "pusher_internal:subscription_succeeded"
    backend.trigger(channel, "order-paid", {"id": 42, "note": "paid"})
    event = json.loads(ws.recv())
    assert event["event"] == "order-paid" and event["channel"] == channel
    sealed = json.loads(event["data"])
    assert set(sealed) == {"nonce", "ciphertext"}  # what the library sent, unchanged: no plaintext went through
    box = nacl.secret.SecretBox(base64.b64decode(auth["shared_secret"]))
    plain = box.decrypt(base64.b64decode(sealed["ciphertext"]), base64.b64decode(sealed["nonce"]))
    assert json.loads(plain) == {"id": 42, "note": "paid"}
    # A wrong signature is refused like any private channel's.
    ws.send(json.dumps({"event": "pusher:subscribe", "data": {"channel": "private-encrypted-other", "auth": auth["auth"]}}))
    refused = json.loads(ws.recv())
    assert refused["event"] == "pusher:subscription_error" and refused["data"]["status"] == 401, refused
    # Client events would go out in the clear: refused, and nothing reaches a second subscriber.
    other, other_hello = raw_socket(b)
    other_auth = backend.authenticate(channel=channel, socket_id=json.loads(other_hello["data"])["socket_id"])
    other.send(json.dumps({"event": "pusher:subscribe", "data": {"channel": channel, "auth": other_auth["auth"]}}))
    assert json.loads(other.recv())["event"] == "pusher_internal:subscription_succeeded"
    ws.send(json.dumps({"event": "client-typing", "channel": channel, "data": {"x": 1}}))
    error = json.loads(ws.recv())
    assert error["event"] == "pusher:error" and "encrypted" in error["data"]["message"], error
    other.settimeout(1)
    with pytest.raises(websocket.WebSocketTimeoutException):
        other.recv()
    ws.close()
    other.close()


def test_cache_channels_give_a_new_subscriber_the_last_event_or_a_cache_miss(rt):
    """cache-, private-cache- (and presence-cache-): the last event triggered through the HTTP API is kept 30 minutes
    in Redis; every new subscriber, on any worker, gets it right after subscription_succeeded, or pusher:cache_miss."""
    a, b = rt.a, rt.b
    backend = pusher.Pusher(app_id=APP, key=KEY, secret=SECRET, host="127.0.0.1", port=int(b.base.rsplit(":", 1)[1]), ssl=False)
    channel = "cache-scores-" + str(int(time.time() * 1000))
    first, _ = raw_socket(a)
    first.send(json.dumps({"event": "pusher:subscribe", "data": {"channel": channel}}))
    assert json.loads(first.recv())["event"] == "pusher_internal:subscription_succeeded"
    assert json.loads(first.recv()) == {"event": "pusher:cache_miss", "channel": channel}
    for home in (1, 2):
        backend.trigger(channel, "score", {"home": home})
        live = json.loads(first.recv())
        assert live["event"] == "score" and json.loads(live["data"]) == {"home": home}
    # A newcomer on the other worker starts from the last event, not the first, and only once.
    later, _ = raw_socket(b)
    later.send(json.dumps({"event": "pusher:subscribe", "data": {"channel": channel}}))
    assert json.loads(later.recv())["event"] == "pusher_internal:subscription_succeeded"
    cached = json.loads(later.recv())
    assert cached["event"] == "score" and cached["channel"] == channel and json.loads(cached["data"]) == {"home": 2}
    later.settimeout(0.5)
    with pytest.raises(websocket.WebSocketTimeoutException):
        later.recv()
    ttl = rt_redis(rt).pttl("pusher:cache:{%s}" % channel)
    assert 1_790_000 < ttl <= 1_800_000, ttl
    # A private cache channel: signed as usual, cached the same way.
    private = "private-cache-board-" + str(int(time.time() * 1000))
    backend.trigger(private, "state", {"open": True})
    ws, hello = raw_socket(a)
    auth = backend.authenticate(channel=private, socket_id=json.loads(hello["data"])["socket_id"])
    ws.send(json.dumps({"event": "pusher:subscribe", "data": {"channel": private, "auth": auth["auth"]}}))
    assert json.loads(ws.recv())["event"] == "pusher_internal:subscription_succeeded"
    cached = json.loads(ws.recv())
    assert cached["event"] == "state" and json.loads(cached["data"]) == {"open": True}
    # An ordinary channel gets neither.
    ws.send(json.dumps({"event": "pusher:subscribe", "data": {"channel": "scores-plain"}}))
    assert json.loads(ws.recv())["event"] == "pusher_internal:subscription_succeeded"
    ws.settimeout(0.5)
    with pytest.raises(websocket.WebSocketTimeoutException):
        ws.recv()
    for sock in (first, later, ws):
        sock.close()


def signin(ws, auth):
    ws.send(json.dumps({"event": "pusher:signin", "data": {"auth": auth["auth"], "user_data": auth["user_data"]}}))
    return json.loads(ws.recv())


def test_signin_server_to_user_events_and_terminate(rt):
    """pusher:signin with user_data signed by the official library (authenticate_user) or by /pusher/user-auth; the
    user's own #server-to-user- channel takes only a connection signed in as that user; send_to_user reaches every
    signed-in connection of the user on both workers, nobody else's; terminate_user_connections closes them all."""
    a, b = rt.a, rt.b
    backend = pusher.Pusher(app_id=APP, key=KEY, secret=SECRET, host="127.0.0.1", port=int(b.base.rsplit(":", 1)[1]), ssl=False)
    user = "signer" + str(int(time.time() * 1000))
    mine = []
    for worker in (a, b):
        ws, hello = raw_socket(worker)
        socket_id = json.loads(hello["data"])["socket_id"]
        # Before signing in, the user's channel is refused.
        ws.send(json.dumps({"event": "pusher:subscribe", "data": {"channel": f"#server-to-user-{user}"}}))
        refused = json.loads(ws.recv())
        assert refused["event"] == "pusher:subscription_error" and refused["data"]["status"] == 403, refused
        auth = backend.authenticate_user(socket_id, {"id": user, "user_info": {"name": "S"}})
        success = signin(ws, auth)
        assert success["event"] == "pusher:signin_success", success
        assert json.loads(success["data"]["user_data"])["id"] == user
        ws.send(json.dumps({"event": "pusher:subscribe", "data": {"channel": f"#server-to-user-{user}"}}))
        assert json.loads(ws.recv())["event"] == "pusher_internal:subscription_succeeded"
        mine.append(ws)
    # Someone else, signed in through this service's own endpoint, subscribed to nothing of this user's.
    other = register(a, "other" + str(int(time.time() * 1000)))
    ows, ohello = raw_socket(b)
    r = a.call("POST", "/pusher/user-auth", user=other, data={"socket_id": json.loads(ohello["data"])["socket_id"]})
    assert r.status_code == 200, r.text
    assert json.loads(r.json()["user_data"]) == {"id": other.name}
    assert signin(ows, r.json())["event"] == "pusher:signin_success"
    ows.send(json.dumps({"event": "pusher:subscribe", "data": {"channel": f"#server-to-user-{user}"}}))
    assert json.loads(ows.recv())["data"]["status"] == 403
    backend.send_to_user(user, "notice", {"text": "hello"})
    for ws in mine:
        event = json.loads(ws.recv())
        assert event["event"] == "notice" and event["channel"] == f"#server-to-user-{user}"
        assert json.loads(event["data"]) == {"text": "hello"}
    ows.settimeout(0.5)
    with pytest.raises(websocket.WebSocketTimeoutException):
        ows.recv()
    # User channels are not listed among the app's channels.
    assert not any(name.startswith("#") for name in backend.channels_info()["channels"])
    # A bad signature: pusher:error 4009, then the close 4009.
    bad, bad_hello = raw_socket(a)
    forged = backend.authenticate_user(json.loads(bad_hello["data"])["socket_id"], {"id": "someone"})
    forged["user_data"] = json.dumps({"id": user})
    error = signin(bad, forged)
    assert error["event"] == "pusher:error" and error["data"]["code"] == 4009, error
    assert close_code(bad) == 4009
    # terminate_user_connections closes every signed-in connection of the user, on both workers, and no other.
    backend.terminate_user_connections(user)
    for ws in mine:
        assert close_code(ws) == 4009
    ows.send(json.dumps({"event": "pusher:ping", "data": {}}))
    ows.settimeout(5)
    assert json.loads(ows.recv())["event"] == "pusher:pong"
    ows.close()


def signed_in(worker, backend, user, watchlist=None):
    """A raw connection to `worker` signed in as `user` (with a watchlist), subscribed to its #server-to-user- channel."""
    ws, hello = raw_socket(worker)
    data = {"id": user}
    if watchlist is not None:
        data["watchlist"] = watchlist
    assert signin(ws, backend.authenticate_user(json.loads(hello["data"])["socket_id"], data))["event"] == "pusher:signin_success"
    return ws


def watchlist_event(ws, timeout=10):
    """The next watchlist event on `ws`: (name, user ids)."""
    ws.settimeout(timeout)
    while True:
        event = json.loads(ws.recv())
        if event["event"] == "pusher_internal:watchlist_events":
            assert event["channel"].startswith("#server-to-user-")
            (item,) = json.loads(event["data"])["events"]
            return item["name"], item["user_ids"]


def test_watchlists_tell_online_and_offline_per_user_across_workers_and_expiry(rt):
    """A signed-in user's watchlist: who of it is online at sign-in, then online when a watched user's first connection
    anywhere signs in, offline when their last one closes (not before), and offline when their worker dies and the
    sweeper finds them expired."""
    a, b = rt.a, rt.b
    backend = pusher.Pusher(app_id=APP, key=KEY, secret=SECRET, host="127.0.0.1", port=int(a.base.rsplit(":", 1)[1]), ssl=False)
    tag = str(int(time.time() * 1000))
    x, y, w = "wx" + tag, "wy" + tag, "ww" + tag
    x_on_b = signed_in(b, backend, x)
    watcher = signed_in(a, backend, w, watchlist=[x, y])
    assert watchlist_event(watcher) == ("online", [x])  # x was already online, on the other worker
    y_first = signed_in(b, backend, y)
    assert watchlist_event(watcher) == ("online", [y])
    y_second = signed_in(a, backend, y)  # a second connection: y was online already, nothing new
    y_first.close()
    y_second.send(json.dumps({"event": "pusher:ping", "data": {}}))
    assert json.loads(y_second.recv())["event"] == "pusher:pong"
    y_second.close()
    assert watchlist_event(watcher) == ("offline", [y])  # only once the last connection went
    # x's worker dies: x is found expired (TTL 3 s + sweep) and announced offline to the watcher on the surviving one.
    b.proc.stop(signal.SIGKILL)
    started = time.monotonic()
    assert watchlist_event(watcher, timeout=15) == ("offline", [x])
    assert time.monotonic() - started <= 3 + 0.25 + 5
    watcher.close()


def test_a_connection_that_does_not_sign_in_in_time_is_closed_when_sign_in_is_required(make_cluster):
    strict = make_cluster(1, PUSHER_KEY=KEY, PUSHER_SECRET=SECRET, PUSHER_APP_ID=APP, PUSHER_SIGNIN_TIMEOUT=1)
    worker = strict.a
    backend = pusher.Pusher(app_id=APP, key=KEY, secret=SECRET, host="127.0.0.1", port=int(worker.base.rsplit(":", 1)[1]), ssl=False)
    late, _ = raw_socket(worker)
    started = time.monotonic()
    late.settimeout(5)
    error = json.loads(late.recv())
    assert error["event"] == "pusher:error" and error["data"]["code"] == 4009, error
    assert close_code(late) == 4009
    assert 0.8 <= time.monotonic() - started <= 4.0
    # Signed in within the time: the connection stays.
    ws, hello = raw_socket(worker)
    assert signin(ws, backend.authenticate_user(json.loads(hello["data"])["socket_id"], {"id": "punctual"}))["event"] == "pusher:signin_success"
    time.sleep(1.5)
    ws.send(json.dumps({"event": "pusher:ping", "data": {}}))
    assert json.loads(ws.recv())["event"] == "pusher:pong"
    ws.close()


def rt_redis(rt):
    """A redis-py client for the realtime fixture's Redis (a cluster client on a Redis Cluster)."""
    from conftest import RedisClusterProcesses
    if isinstance(rt.redis_proc, RedisClusterProcesses):
        return rt.redis_proc.client()
    import redis as redis_py
    return redis_py.Redis(port=rt.redis_proc.port)


def test_protocol_details(rt):
    a = rt.a
    ws, hello = raw_socket(a)
    assert hello["event"] == "pusher:connection_established"
    data = json.loads(hello["data"])
    sid = data["socket_id"]
    assert data["activity_timeout"] == 120 and all(p.isdigit() for p in sid.split("."))
    ws.send(json.dumps({"event": "pusher:ping", "data": {}}))
    assert json.loads(ws.recv())["event"] == "pusher:pong"
    ws.send(json.dumps({"event": "pusher:subscribe", "data": {"channel": "private-chats-x", "auth": KEY + ":bad"}}))
    err = json.loads(ws.recv())
    assert err["event"] == "pusher:subscription_error"
    err_data = err["data"] if isinstance(err["data"], dict) else json.loads(err["data"])
    assert err_data["type"] == "AuthError" and err_data["status"] == 401
    ws.send(json.dumps({"event": "pusher:subscribe", "data": json.dumps({"channel": "lobby-news"})}))  # data as a string
    ok = json.loads(ws.recv())
    assert ok == {"event": "pusher_internal:subscription_succeeded", "channel": "lobby-news", "data": "{}"}
    # A recoverable channel's answer carries its position (test_recovery.py has the rest).
    ws.send(json.dumps({"event": "pusher:subscribe", "data": {"channel": "room-general"}}))
    ok = json.loads(ws.recv())
    assert ok["event"] == "pusher_internal:subscription_succeeded" and ok["channel"] == "room-general"
    assert set(json.loads(ok["data"])) == {"recovery"}
    ws.send(json.dumps({"event": "pusher:subscribe", "data": {"channel": "bad channel!"}}))
    assert json.loads(ws.recv())["event"] == "pusher:subscription_error"
    ws.close()
    # Unknown key → 4001; unsupported protocol → 4007.
    port = int(a.base.rsplit(":", 1)[1])
    ws = websocket.create_connection(f"ws://127.0.0.1:{port}/app/wrong-key?protocol=7", timeout=5)
    msg = json.loads(ws.recv())
    assert msg["event"] == "pusher:error" and msg["data"]["code"] == 4001
    with pytest.raises(websocket.WebSocketConnectionClosedException):
        ws.recv()
        ws.recv()
    ws = websocket.create_connection(f"ws://127.0.0.1:{port}/app/{KEY}?protocol=3", timeout=5)
    assert json.loads(ws.recv())["data"]["code"] == 4007


def test_client_events_reach_others_on_every_worker(rt):
    a, b = rt.a, rt.b
    import hashlib, hmac
    def subscribe(ws, sid, channel):
        auth = KEY + ":" + hmac.new(SECRET.encode(), f"{sid}:{channel}".encode(), hashlib.sha256).hexdigest()
        ws.send(json.dumps({"event": "pusher:subscribe", "data": {"channel": channel, "auth": auth}}))
        assert json.loads(ws.recv())["event"] == "pusher_internal:subscription_succeeded"
    w1, h1 = raw_socket(a)
    w2, h2 = raw_socket(b)
    s1, s2 = json.loads(h1["data"])["socket_id"], json.loads(h2["data"])["socket_id"]
    subscribe(w1, s1, "private-game")
    subscribe(w2, s2, "private-game")
    w1.send(json.dumps({"event": "client-move", "channel": "private-game", "data": {"x": 1}}))
    got = json.loads(w2.recv())
    assert got["event"] == "client-move" and got["channel"] == "private-game" and json.loads(got["data"]) == {"x": 1}
    # Not echoed to the sender; rate limited at 10 per (wall-clock) second: 25 sent at once fall in at most two
    # seconds on any machine that sends them within a second, so at least 4 are refused and at most 20 delivered.
    for i in range(25):
        w1.send(json.dumps({"event": "client-move", "channel": "private-game", "data": {"i": i}}))
    w1.settimeout(1.0)
    errors = []
    try:
        while True:
            m = json.loads(w1.recv())
            assert m["event"] != "client-move"
            errors.append(m)
    except websocket.WebSocketTimeoutException:
        pass
    assert any(e["event"] == "pusher:error" and e["data"]["code"] == 4301 for e in errors)
    w2.settimeout(1.0)
    received = 0
    try:
        while True:
            if json.loads(w2.recv())["event"] == "client-move":
                received += 1
    except websocket.WebSocketTimeoutException:
        pass
    assert 9 <= received <= 20, received  # the first move above may share the first second
    w1.close(); w2.close()


def test_pusher_http_api_through_the_other_worker(rt):
    a, b = rt.a, rt.b
    alice = register(a, "alice")
    client = Client(a, alice)
    client.subscribe("my-channel", ["my-event"])
    client.subscribe("presence-room-general", ["pusher_internal:subscription_succeeded"])
    client.wait_for(lambda e: e[0] == "presence-room-general")
    port = int(b.base.rsplit(":", 1)[1])
    server = pusher.Pusher(app_id=APP, key=KEY, secret=SECRET, host="127.0.0.1", port=port, ssl=False)
    server.trigger("my-channel", "my-event", {"message": "hello"})
    _, _, data = client.wait_for(lambda e: e[0] == "my-channel")
    assert json.loads(data) == {"message": "hello"}
    server.trigger_batch([{"channel": "my-channel", "name": "my-event", "data": {"n": 2}}])
    client.wait_for(lambda e: e[0] == "my-channel" and json.loads(e[2]) == {"n": 2})

    info = server.channel_info("my-channel", ["subscription_count"])
    assert info["occupied"] is True and info["subscription_count"] == 1
    assert server.channel_info("empty-channel")["occupied"] is False
    channels = server.channels_info(prefix_filter="presence-", attributes=["user_count"])["channels"]
    assert channels == {"presence-room-general": {"user_count": 1}}
    both = server.channels_info(prefix_filter="presence-", attributes=["user_count", "subscription_count"])["channels"]
    assert both == {"presence-room-general": {"user_count": 1, "subscription_count": 1}}
    assert server.channels_info(prefix_filter="my-", attributes=["subscription_count"])["channels"] == {"my-channel": {"subscription_count": 1}}
    assert server.channel_info("presence-room-general", ["user_count", "subscription_count"]) == {
        "occupied": True, "user_count": 1, "subscription_count": 1}
    assert "my-channel" in server.channels_info()["channels"]
    assert server.users_info("presence-room-general") == {"users": [{"id": "alice"}]}

    bad = pusher.Pusher(app_id=APP, key=KEY, secret="wrong-secret", host="127.0.0.1", port=port, ssl=False)
    with pytest.raises(Exception) as err:
        bad.trigger("my-channel", "my-event", {"x": 1})
    assert "401" in str(err.value) or "Unauthorized" in str(err.value) or "signature" in str(err.value).lower()
    client.close()


def test_presence_members_across_workers_and_worker_death(rt):
    a, b = rt.a, rt.b
    alice, bob = register(a, "alice"), register(a, "bobby")
    ca = Client(a, alice)
    ca.subscribe("presence-room-general", ["pusher_internal:subscription_succeeded", "pusher_internal:member_added",
                                           "pusher_internal:member_removed"])
    _, _, data = ca.wait_for(lambda e: e[1] == "pusher_internal:subscription_succeeded")
    assert json.loads(data)["presence"]["ids"] == ["alice"]
    cb = Client(b, bob)
    cb.subscribe("presence-room-general", ["pusher_internal:subscription_succeeded"])
    _, _, data = cb.wait_for(lambda e: e[1] == "pusher_internal:subscription_succeeded")
    presence = json.loads(data)["presence"]
    assert sorted(presence["ids"]) == ["alice", "bobby"] and presence["count"] == 2
    assert presence["hash"]["alice"] == {"username": "alice"}
    _, _, data = ca.wait_for(lambda e: e[1] == "pusher_internal:member_added")
    assert json.loads(data)["user_id"] == "bobby"
    # bob is present in the chat room too.
    assert [u["username"] for u in a.call("GET", "/api/rooms/general/users").json()["users"]] == ["alice", "bobby"]
    # A second connection of bob does not announce him again; closing one of two does not remove him.
    cb2 = Client(a, bob)
    cb2.subscribe("presence-room-general", ["pusher_internal:subscription_succeeded"])
    cb2.wait_for(lambda e: e[1] == "pusher_internal:subscription_succeeded")
    cb2.close()
    time.sleep(0.8)
    assert all(e[1] != "pusher_internal:member_removed" for e in list(ca.events.queue) + ca.backlog)
    # SIGKILL worker B: bob's presence lapses and is announced within TTL + sweep interval.
    t0 = time.monotonic()
    b.proc.stop(signal.SIGKILL)
    _, _, data = ca.wait_for(lambda e: e[1] == "pusher_internal:member_removed", timeout=3 + 3)
    assert json.loads(data)["user_id"] == "bobby"
    assert time.monotonic() - t0 <= 3 + 1 + 2
    ca.close()


def test_slow_consumer_is_closed_with_4100(rt):
    a, b = rt.a, rt.b
    port = int(a.base.rsplit(":", 1)[1])
    slow = websocket.create_connection(f"ws://127.0.0.1:{port}/app/{KEY}?protocol=7", timeout=5)
    slow.recv()
    slow.send(json.dumps({"event": "pusher:subscribe", "data": {"channel": "firehose"}}))
    slow.recv()
    # Make the client stop reading: shrink its receive buffer is not possible after connect, so just never read
    # while far more than the queue bound (1,000 messages) plus the socket buffers is published.
    server = pusher.Pusher(app_id=APP, key=KEY, secret=SECRET, host="127.0.0.1", port=int(b.base.rsplit(":", 1)[1]), ssl=False)
    chunk = "x" * 9000
    for _ in range(40):
        server.trigger_batch([{"channel": "firehose", "name": "blob", "data": chunk} for _ in range(10)])
    # Straight into Redis, as the workers publish: PUBLISH on one Redis; on a cluster SPUBLISH on the primary of the
    # channel's slot, where the worker holds its sharded subscription.
    import redis as redis_py
    from conftest import RedisClusterProcesses
    command = "PUBLISH"
    if isinstance(rt.redis_proc, RedisClusterProcesses):
        owner = rt.redis_proc.client().get_node_from_key("ch:{firehose}")
        r, command = redis_py.Redis(host=owner.host, port=owner.port), "SPUBLISH"
    else:
        r = redis_py.Redis(port=rt.redis_proc.port)
    payload = json.dumps({"event": "blob", "channel": "firehose", "data": chunk})
    pipe = r.pipeline(transaction=False)
    for _ in range(4000):
        pipe.execute_command(command, "ch:{firehose}", payload)
    pipe.execute()
    # The server gave up on this client: draining now ends in a 4100 close, well before all messages.
    slow.settimeout(10)
    received = 0
    code = None
    try:
        while True:
            op, frame = slow.recv_data(control_frame=True)
            if op == websocket.ABNF.OPCODE_CLOSE:
                code = int.from_bytes(frame[:2], "big")
                break
            received += 1
    except (websocket.WebSocketConnectionClosedException, websocket.WebSocketTimeoutException):
        pass
    assert code == 4100, (code, received)
    assert received < 4400
    # The worker is fine and keeps serving others.
    fast = websocket.create_connection(f"ws://127.0.0.1:{port}/app/{KEY}?protocol=7", timeout=5)
    assert json.loads(fast.recv())["event"] == "pusher:connection_established"


def test_sigterm_closes_sockets_with_4200_and_removes_presence(rt):
    a, b = rt.a, rt.b
    alice = register(a, "alice")
    port = int(b.base.rsplit(":", 1)[1])
    ws = websocket.create_connection(f"ws://127.0.0.1:{port}/app/{KEY}?protocol=7", timeout=5)
    sid = json.loads(json.loads(ws.recv())["data"])["socket_id"]
    auth = b.call("POST", "/pusher/auth", user=alice, data={"socket_id": sid, "channel_name": "presence-room-general"}).json()
    ws.send(json.dumps({"event": "pusher:subscribe", "data": {"channel": "presence-room-general", "auth": auth["auth"],
                                                               "channel_data": auth["channel_data"]}}))
    assert json.loads(ws.recv())["event"] == "pusher_internal:subscription_succeeded"
    assert [u["username"] for u in a.call("GET", "/api/rooms/general/users").json()["users"]] == ["alice"]
    b.proc.proc.send_signal(signal.SIGTERM)
    ws.settimeout(10)
    op, frame = ws.recv_data(control_frame=True)
    while op != websocket.ABNF.OPCODE_CLOSE:
        op, frame = ws.recv_data(control_frame=True)
    assert int.from_bytes(frame[:2], "big") == 4200
    assert b.proc.proc.wait(15) == 0
    # Its sockets' presence went with it, at once (not by expiry).
    assert a.call("GET", "/api/rooms/general/users").json()["users"] == []


def test_redis_restart_resubscribes_and_resends_presence(start_server):
    # A Redis that keeps its data across the restart, as ops/redis.conf's does: the rooms and the user are still
    # there, so the presence channel's access holds when the worker checks it again.
    redis_proc = RedisProcess(persistent=True)
    redis_proc.start()
    try:
        settings = dict(default_settings(redis_proc.url), PUSHER_KEY=KEY, PUSHER_SECRET=SECRET, PUSHER_APP_ID=APP,
                        CHAT_PRESENCE_TTL=3, SWEEP_INTERVAL_MS=250)
        rt = Cluster(redis_proc, [Worker(start_server(**settings)) for _ in range(2)])
        run_redis_restart_resubscribes(rt)
    finally:
        redis_proc.cleanup()


def run_redis_restart_resubscribes(rt):
    a, b = rt.a, rt.b
    alice = register(a, "alice")
    client = Client(a, alice)
    client.subscribe("room-general", ["presence-update", "news"])
    client.subscribe("presence-room-general", ["pusher_internal:subscription_succeeded"])
    client.wait_for(lambda e: e[1] == "pusher_internal:subscription_succeeded")
    rt.redis_proc.kill()
    time.sleep(0.5)
    rt.redis_proc.start()
    # The worker notices, resubscribes, and sends current presence again.
    client.wait_for(lambda e: e[1] == "pusher_internal:subscription_succeeded", timeout=10)
    port = int(b.base.rsplit(":", 1)[1])
    server = pusher.Pusher(app_id=APP, key=KEY, secret=SECRET, host="127.0.0.1", port=port, ssl=False)
    deadline = time.monotonic() + 10
    while True:
        server.trigger("room-general", "news", {"after": "restart"})
        try:
            client.wait_for(lambda e: e[1] == "news", timeout=0.5)
            break
        except AssertionError:
            assert time.monotonic() < deadline, "no event after the Redis restart"
    client.close()


def close_code(ws):
    """The code of the close frame the server sends next, or the exception that ended the connection instead."""
    import struct
    try:
        while True:
            op, data = ws.recv_data(control_frame=True)
            if op == websocket.ABNF.OPCODE_CLOSE:
                return struct.unpack("!H", data[:2])[0] if len(data) >= 2 else None
    except (ConnectionResetError, BrokenPipeError, websocket.WebSocketConnectionClosedException) as e:
        return type(e).__name__


def test_malformed_frames_and_messages(rt):
    a, b = rt.a, rt.b
    ws, _ = raw_socket(a)
    # Bad JSON, JSON without an event, unknown events: an error each, and the connection goes on.
    for text in ["not json", "[1,2]", json.dumps({"data": {}}), json.dumps({"event": "pusher:nonsense"}), "{" * 10_000]:
        ws.send(text)
        msg = json.loads(ws.recv())
        assert msg["event"] == "pusher:error", (text[:30], msg)
    ws.send_binary(b"\xff\x00binary")  # binary frames are not part of the protocol: ignored
    ws.send(json.dumps({"event": "pusher:subscribe", "data": {}}))  # no channel
    assert json.loads(ws.recv())["event"] == "pusher:error"
    # A flood of pings is answered in order.
    for _ in range(500):
        ws.send(json.dumps({"event": "pusher:ping", "data": {}}))
    assert all(json.loads(ws.recv())["event"] == "pusher:pong" for _ in range(500))
    # A message just under the 64 KiB limit is read (and refused as a message); invalid UTF-8 closes with 1007.
    ws.send(json.dumps({"event": "pusher:ping", "data": "x" * 60_000}))
    assert json.loads(ws.recv())["event"] == "pusher:pong"
    ws.sock.send(websocket.ABNF.create_frame(b"\xc3\x28", websocket.ABNF.OPCODE_TEXT).format())
    assert close_code(ws) == 1007
    # A frame the client did not mask closes the connection with 1002 (RFC 6455 5.1), whole or as a fragment.
    for first in [0x81, 0x01]:
        ws, _ = raw_socket(a)
        payload = json.dumps({"event": "pusher:ping", "data": {}}).encode()
        ws.sock.send(bytes([first, len(payload)]) + payload)
        assert close_code(ws) == 1002
    # Over the limit: the connection is closed (1009, or reset while the client is still sending).
    ws, _ = raw_socket(a)
    ws.send("x" * 100_000)
    assert close_code(ws) in (1009, "ConnectionResetError", "BrokenPipeError", "WebSocketConnectionClosedException")
    # A subscribe flood: 100 channels per connection, then LimitReached (429) for each further one.
    ws, _ = raw_socket(a)
    for i in range(130):
        ws.send(json.dumps({"event": "pusher:subscribe", "data": {"channel": f"flood-{i}"}}))
    replies = [json.loads(ws.recv()) for _ in range(130)]
    assert sum(r["event"] == "pusher_internal:subscription_succeeded" for r in replies) == 100
    refused = [r for r in replies if r["event"] == "pusher:subscription_error"]
    assert len(refused) == 30 and all(r["data"]["status"] == 429 and r["data"]["type"] == "LimitReached" for r in refused)
    ws.send(json.dumps({"event": "pusher:unsubscribe", "data": {"channel": "flood-0"}}))
    ws.send(json.dumps({"event": "pusher:subscribe", "data": {"channel": "flood-200"}}))
    assert json.loads(ws.recv())["event"] == "pusher_internal:subscription_succeeded"
    ws.close()
    # The worker is unaffected: a fresh socket on it still receives what the other worker triggers.
    ws, _ = raw_socket(a)
    ws.send(json.dumps({"event": "pusher:subscribe", "data": {"channel": "after-abuse"}}))
    assert json.loads(ws.recv())["event"] == "pusher_internal:subscription_succeeded"
    client = pusher.Pusher(app_id=APP, key=KEY, secret=SECRET, host="127.0.0.1", port=int(b.base.rsplit(":", 1)[1]), ssl=False)
    client.trigger("after-abuse", "ok", {"n": 1})
    msg = json.loads(ws.recv())
    assert msg["event"] == "ok" and msg["channel"] == "after-abuse"
    assert a.call("GET", "/health").status_code == 200


def test_channel_listing_answers_every_live_channel_in_one_batch(rt):
    """GET /apps/{id}/channels reads every live channel's counts in one pipelined batch: with 40 channels live (30
    public, 10 presence with 1 or 2 users each) the answer has each one, with its own user count."""
    import hashlib
    import hmac

    a, b = rt.a, rt.b
    sockets = []

    def connect(worker):
        ws = websocket.create_connection(worker.base.replace("http", "ws") + f"/app/{KEY}?protocol=7", timeout=10)
        sockets.append(ws)
        return ws, json.loads(json.loads(ws.recv())["data"])["socket_id"]

    def subscribe(ws, socket_id, channel, user=None):
        data = {"channel": channel}
        if user:
            channel_data = json.dumps({"user_id": user})
            sig = hmac.new(SECRET.encode(), f"{socket_id}:{channel}:{channel_data}".encode(), hashlib.sha256).hexdigest()
            data.update(auth=f"{KEY}:{sig}", channel_data=channel_data)
        ws.send(json.dumps({"event": "pusher:subscribe", "data": data}))
        while True:
            msg = json.loads(ws.recv())
            assert msg["event"] not in ("pusher:error", "pusher:subscription_error"), msg
            if msg["event"] == "pusher_internal:subscription_succeeded" and msg["channel"] == channel:
                return

    for i in range(30):
        ws, sid = connect(a if i % 2 else b)
        subscribe(ws, sid, f"public-{i}")
    expected = {}
    for i in range(10):
        users = [f"u{i}-{j}" for j in range(1 + i % 2)]
        for j, user in enumerate(users):
            ws, sid = connect(a if j else b)
            subscribe(ws, sid, f"presence-lobby-{i}", user)
        expected[f"presence-lobby-{i}"] = {"user_count": len(users)}
    server = pusher.Pusher(app_id=APP, key=KEY, secret=SECRET, host="127.0.0.1", port=int(b.base.rsplit(":", 1)[1]), ssl=False)
    assert server.channels_info(prefix_filter="presence-lobby-", attributes=["user_count"])["channels"] == expected
    everything = server.channels_info()["channels"]
    assert {f"public-{i}" for i in range(30)} | set(expected) <= set(everything)
    for ws in sockets:
        ws.close()


def test_subscribe_unsubscribe_churn_leaves_a_wanted_channel_subscribed(rt):
    """One socket flips a public channel 300 times without waiting, ending subscribed, while a second socket on the
    same worker flips it too and ends unsubscribed: the worker's Redis subscription must end up wanted, so an event
    triggered on the other worker arrives (the hub's subscribes and unsubscribes reach Redis in the order it decided
    them)."""
    a, b = rt.a, rt.b

    def connect():
        ws = websocket.create_connection(a.base.replace("http", "ws") + f"/app/{KEY}?protocol=7", timeout=10)
        ws.recv()
        return ws

    keeper, flipper = connect(), connect()
    for i in range(300):
        for ws, end_subscribed in ((keeper, True), (flipper, False)):
            subscribe = (i % 2 == 0) == end_subscribed if i < 299 else end_subscribed
            event = "pusher:subscribe" if subscribe else "pusher:unsubscribe"
            ws.send(json.dumps({"event": event, "data": {"channel": "churn"}}))
    keeper.send(json.dumps({"event": "pusher:ping", "data": {}}))
    keeper.settimeout(10)
    while json.loads(keeper.recv())["event"] != "pusher:pong":
        pass
    flipper.send(json.dumps({"event": "pusher:ping", "data": {}}))
    flipper.settimeout(10)
    while json.loads(flipper.recv())["event"] != "pusher:pong":
        pass
    server = pusher.Pusher(app_id=APP, key=KEY, secret=SECRET, host="127.0.0.1", port=int(b.base.rsplit(":", 1)[1]), ssl=False)
    server.trigger("churn", "after-churn", {"ok": True})
    deadline = time.monotonic() + 5
    got = None
    while time.monotonic() < deadline:
        keeper.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            msg = json.loads(keeper.recv())
        except websocket.WebSocketTimeoutException:
            break
        if msg["event"] == "after-churn":
            got = msg
            break
    assert got is not None, "the wanted channel ended unsubscribed in Redis"
    keeper.close()
    flipper.close()
