"""ryOS's `local` realtime provider on real workers: tickets (POST /api/realtime/ticket), its /ws socket with ryOS's own
frames on the same hub as the Pusher socket (events made on the other worker, channel access, revocation, the same
limits and liveness), and GET /app-config.js."""
import hashlib
import json
import re
import socket
import time

import redis as redis_py
import websocket

from conftest import RedisClusterProcesses, register, wait_until

HEX64 = re.compile(r"^[0-9a-f]{64}$")


def port_of(worker) -> int:
    return int(worker.base.rsplit(":", 1)[1])


def ticket_for(worker, user) -> str:
    r = worker.call("POST", "/api/realtime/ticket", user=user)
    assert r.status_code == 200, r.text
    ticket = r.json()["ticket"]
    assert HEX64.match(ticket), ticket
    return ticket


def ticket_key(ticket: str) -> str:
    return f"realtime:ticket:{{{hashlib.sha256(ticket.encode()).hexdigest()}}}"


class RyWS:
    """A ryOS LocalRealtimeClient's socket, frame by frame."""

    def __init__(self, worker, ticket=None, timeout=5):
        url = f"ws://127.0.0.1:{port_of(worker)}/ws" + (f"?ticket={ticket}" if ticket else "")
        self.ws = websocket.create_connection(url, timeout=timeout)
        self.backlog = []

    def send(self, **frame):
        self.ws.send(json.dumps(frame))

    def recv(self, timeout=5):
        self.ws.settimeout(timeout)
        return json.loads(self.ws.recv())

    def sync(self):
        """ping → pong: everything sent before has been handled (the socket's messages are handled in order). Frames
        that came first are kept for wait_for."""
        self.send(type="ping")
        while True:
            frame = self.recv()
            if frame == {"type": "pong"}:
                return
            self.backlog.append(frame)

    def subscribe(self, channel):
        self.send(type="subscribe", channel=channel)
        self.sync()

    def wait_for(self, predicate, timeout=5):
        for i, frame in enumerate(self.backlog):
            if predicate(frame):
                return self.backlog.pop(i)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                frame = self.recv(max(0.05, deadline - time.monotonic()))
            except websocket.WebSocketTimeoutException:
                break
            if predicate(frame):
                return frame
            self.backlog.append(frame)
        raise AssertionError(f"expected frame not received; got {self.backlog}")

    def nothing_for(self, seconds):
        """Asserts no frame arrives within `seconds` (besides those already kept)."""
        try:
            frame = self.recv(seconds)
        except websocket.WebSocketTimeoutException:
            return
        raise AssertionError(f"unexpected frame {frame}")

    def close(self):
        self.ws.close()


def error_for(channel):
    return {"type": "subscription_error", "channel": channel}


def post_message(worker, user, room, content):
    r = worker.call("POST", f"/api/rooms/{room}/messages", user=user, json={"content": content})
    assert r.status_code in (200, 201), r.text
    return r


def test_ticket_ping_and_an_event_made_on_the_other_worker(cluster):
    a, b = cluster.a, cluster.b
    alice = register(a, "alice")
    assert a.call("POST", "/api/realtime/ticket").status_code == 401
    ticket = ticket_for(a, alice)
    r = cluster.redis()
    key = ticket_key(ticket)
    assert r.get(key) == "alice"
    assert 55 <= r.ttl(key) <= 60
    assert r.get(f"realtime:ticket:{{{ticket}}}") is None, "the ticket itself is not stored"
    sock = RyWS(a, ticket)
    # No welcome frame: the first thing the socket gets is the pong.
    sock.send(type="ping")
    assert sock.recv() == {"type": "pong"}
    assert wait_until(lambda: not r.exists(key), 3), "the socket took the ticket"
    sock.subscribe("room-general")
    post_message(b, alice, "general", "hello <b>&</b>")
    frame = sock.wait_for(lambda f: f.get("type") == "event" and f.get("event") == "room-message")
    assert frame["channel"] == "room-general"
    assert set(frame) == {"type", "channel", "event", "data"}, frame
    assert isinstance(frame["data"], dict), frame
    assert frame["data"]["message"]["roomId"] == "general"
    assert frame["data"]["message"]["username"] == "alice"
    assert "hello" in frame["data"]["message"]["content"]
    # Unknown frames and bad JSON are ignored; the socket goes on.
    sock.ws.send("not json")
    sock.send(type="hello")
    sock.send(event="pusher:ping", data={})
    sock.sync()
    assert sock.backlog == [] or all(f.get("type") == "event" for f in sock.backlog), sock.backlog
    # Unsubscribed: nothing more from the room.
    sock.send(type="unsubscribe", channel="room-general")
    sock.sync()
    sock.backlog.clear()
    post_message(b, alice, "general", "after unsubscribe")
    sock.nothing_for(1.0)
    sock.close()


def test_no_pusher_frames_on_a_ryos_socket(cluster):
    """Member events of presence channels are Pusher's: a ryOS socket on the same channel gets none."""
    a, b = cluster.a, cluster.b
    alice = register(a, "alice")
    sock = RyWS(a, ticket_for(a, alice))
    sock.subscribe("presence-global")
    sock.subscribe("presence-room-general")
    # A Pusher client joins presence-room-general on the other worker: member_added goes to Pusher sockets only.
    port = port_of(b)
    bob = register(a, "bobby")
    pws = websocket.create_connection(f"ws://127.0.0.1:{port}/app/presence-key?protocol=7", timeout=5)
    sid = json.loads(json.loads(pws.recv())["data"])["socket_id"]
    auth = b.call("POST", "/pusher/auth", user=bob, data={"socket_id": sid, "channel_name": "presence-room-general"}).json()
    pws.send(json.dumps({"event": "pusher:subscribe", "data": {"channel": "presence-room-general", **auth}}))
    assert json.loads(pws.recv())["event"] == "pusher_internal:subscription_succeeded"
    sock.sync()
    assert not [f for f in sock.backlog if "pusher" in json.dumps(f)], sock.backlog
    pws.close()
    sock.close()


def test_private_channels_follow_ryos_rules(cluster):
    a, b = cluster.a, cluster.b
    alice, bob, carol = register(a, "alice"), register(a, "bobby"), register(a, "carol")
    rid = a.call("POST", "/api/rooms", user=bob, json={"name": "bc", "type": "private", "members": ["carol"]}).json()["room"]["id"]
    mine = a.call("POST", "/api/rooms", user=alice, json={"name": "ab", "type": "private", "members": ["bobby"]}).json()["room"]["id"]
    sock = RyWS(b, ticket_for(a, alice))
    for channel in [f"private-room-{rid}", "private-chats-bobby", "private-sync-alice", "private-ai-alice",
                    "presence-other", f"presence-room-{rid}", "#server-to-user-alice", "bad channel"]:
        sock.send(type="subscribe", channel=channel)
        assert sock.recv() == error_for(channel), channel
    for channel in ["private-chats-alice", f"private-room-{mine}", "presence-global", "chats-public", f"room-{rid}"]:
        sock.send(type="subscribe", channel=channel)
        sock.send(type="ping")
        assert sock.recv() == {"type": "pong"}, channel
    # Events of the private room reach its member's socket, made on the other worker.
    post_message(a, bob, mine, "for alice")
    frame = sock.wait_for(lambda f: f.get("channel") == f"private-room-{mine}" and f.get("event") == "room-message")
    assert frame["data"]["message"]["content"] == "for alice"
    sock.close()


def test_without_a_ticket_only_public_channels(cluster):
    a, b = cluster.a, cluster.b
    alice = register(a, "alice")
    for ticket in [None, "zz", "0" * 64]:
        sock = RyWS(a, ticket)
        for channel in ["private-chats-alice", "presence-global", "presence-room-general"]:
            sock.send(type="subscribe", channel=channel)
            assert sock.recv() == error_for(channel), (ticket, channel)
        sock.subscribe("room-general")
        post_message(b, alice, "general", f"public {ticket}")
        frame = sock.wait_for(lambda f: f.get("event") == "room-message")
        assert frame["data"]["message"]["content"] == f"public {ticket}"
        sock.close()


def test_a_ticket_works_once(cluster):
    a, b = cluster.a, cluster.b
    alice = register(a, "alice")
    ticket = ticket_for(a, alice)
    first = RyWS(a, ticket)
    first.subscribe("private-chats-alice")
    assert first.backlog == []
    second = RyWS(b, ticket)
    second.send(type="subscribe", channel="private-chats-alice")
    assert second.recv() == error_for("private-chats-alice")
    first.close()
    second.close()


def test_an_expired_ticket_is_refused(cluster):
    a = cluster.a
    alice = register(a, "alice")
    ticket = ticket_for(a, alice)
    r = cluster.redis()
    assert 0 < r.ttl(ticket_key(ticket)) <= 60
    # What 60 s do to the key.
    r.delete(ticket_key(ticket))
    sock = RyWS(a, ticket)
    sock.send(type="subscribe", channel="private-chats-alice")
    assert sock.recv() == error_for("private-chats-alice")
    sock.close()


def test_tickets_are_limited_per_user(cluster):
    a = cluster.a
    dave = register(a, "dave")
    codes = [a.call("POST", "/api/realtime/ticket", user=dave).status_code for _ in range(31)]
    assert codes == [200] * 30 + [429], codes
    # Another user is not affected.
    assert a.call("POST", "/api/realtime/ticket", user=register(a, "erin")).status_code == 200


def test_leaving_a_private_room_ends_the_live_subscription(cluster):
    a, b = cluster.a, cluster.b
    alice, bob, carol = register(a, "alice"), register(a, "bobby"), register(a, "carol")
    rid = a.call("POST", "/api/rooms", user=bob, json={"name": "abc", "type": "private", "members": ["alice", "carol"]}).json()["room"]["id"]
    channel = f"private-room-{rid}"
    sock = RyWS(b, ticket_for(a, alice))
    sock.subscribe(channel)
    assert sock.backlog == []
    # alice leaves (on the other worker): her socket is told and unsubscribed.
    assert a.call("DELETE", f"/api/rooms/{rid}", user=alice).status_code == 200
    assert sock.wait_for(lambda f: f.get("type") == "subscription_error") == error_for(channel)
    sock.backlog.clear()
    post_message(a, bob, rid, "alice is gone")
    sock.nothing_for(1.0)
    # And she cannot subscribe again.
    sock.send(type="subscribe", channel=channel)
    assert sock.recv() == error_for(channel)
    sock.close()


def test_a_ryos_socket_that_stops_reading_is_closed(cluster):
    a = cluster.a
    slow = RyWS(a)
    slow.subscribe("firehose")
    # Never read while far more than the queue bound (1,000 messages) plus the socket buffers is published, straight
    # into Redis as the workers publish (SPUBLISH on the channel's primary on a cluster).
    command = "PUBLISH"
    if isinstance(cluster.redis_proc, RedisClusterProcesses):
        owner = cluster.redis_proc.client().get_node_from_key("ch:{firehose}")
        r, command = redis_py.Redis(host=owner.host, port=owner.port), "SPUBLISH"
    else:
        r = redis_py.Redis(port=cluster.redis_proc.port)
    payload = json.dumps({"event": "blob", "channel": "firehose", "data": "x" * 9000})
    pipe = r.pipeline(transaction=False)
    for _ in range(4000):
        pipe.execute_command(command, "ch:{firehose}", payload)
    pipe.execute()
    slow.ws.settimeout(10)
    received, code = 0, None
    try:
        while True:
            op, frame = slow.ws.recv_data(control_frame=True)
            if op == websocket.ABNF.OPCODE_CLOSE:
                code = int.from_bytes(frame[:2], "big")
                break
            received += 1
    except (websocket.WebSocketConnectionClosedException, websocket.WebSocketTimeoutException, ConnectionError):
        pass
    assert code == 4100, (code, received)
    assert received < 4000
    slow.ws.close()


def test_liveness_is_websocket_ping_frames(make_cluster):
    """A silent ryOS socket gets a WebSocket ping frame after activity_timeout; answered (browsers do it themselves) it
    stays open, unanswered it is closed with 4201 after pong_timeout more."""
    activity, pong = 2, 2
    c = make_cluster(1, ACTIVITY_TIMEOUT=activity, PONG_TIMEOUT=pong)
    a = c.a
    answering, silent = RyWS(a), RyWS(a)
    t0 = time.monotonic()
    # websocket-client answers a ping with a pong as it reads it.
    answering.ws.settimeout(0.5)
    pings = 0
    while time.monotonic() - t0 < activity + pong + 2:
        try:
            op, _ = answering.ws.recv_data(control_frame=True)
            pings += op == websocket.ABNF.OPCODE_PING
        except websocket.WebSocketTimeoutException:
            pass
    assert pings >= 1
    answering.send(type="ping")
    assert answering.recv() == {"type": "pong"}
    # The silent one read nothing meanwhile: a ping, then the close.
    silent.ws.settimeout(2)
    frames = []
    while True:
        frame = silent.ws.recv_frame()  # raw frames: no pong or close sent back
        frames.append(frame.opcode)
        if frame.opcode == websocket.ABNF.OPCODE_CLOSE:
            assert int.from_bytes(frame.data[:2], "big") == 4201
            break
    assert frames[0] == websocket.ABNF.OPCODE_PING, frames
    assert websocket.ABNF.OPCODE_TEXT not in frames
    answering.close()
    silent.close()


def test_over_the_connection_limit_a_ryos_socket_gets_only_the_close(make_cluster):
    c = make_cluster(1, MAX_CONNECTIONS=10)
    a = c.a
    held = [socket.create_connection(("127.0.0.1", port_of(a))) for _ in range(10)]
    time.sleep(0.2)
    ws = websocket.create_connection(f"ws://127.0.0.1:{port_of(a)}/ws", timeout=5)
    op, frame = ws.recv_data(control_frame=True)
    assert op == websocket.ABNF.OPCODE_CLOSE and int.from_bytes(frame[:2], "big") == 4004, (op, frame)
    ws.close()
    for s in held:
        s.close()


def runtime_config(worker, **headers):
    r = worker.call("GET", "/app-config.js", headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "application/javascript; charset=utf-8"
    assert r.headers["Cache-Control"] == "no-cache"
    prefix = "window.__RYOS_RUNTIME_CONFIG__ = "
    assert r.text.startswith(prefix) and r.text.endswith(";"), r.text
    return json.loads(r.text[len(prefix):-1])


def test_app_config_js(make_cluster):
    c = make_cluster(1)
    a = c.a
    origin = f"http://127.0.0.1:{port_of(a)}"
    assert runtime_config(a) == {
        "appPublicOrigin": origin, "docsBaseUrl": origin + "/docs", "realtimeProvider": "local", "websocketPath": "/ws",
        "websocketUrl": f"ws://127.0.0.1:{port_of(a)}/ws", "pusher": None, "ieLiveBrowserAvailable": False,
    }
    # X-Forwarded-Proto counts only from a trusted proxy (TRUSTED_PROXIES: loopback by default, as nginx is).
    forwarded = runtime_config(a, **{"X-Forwarded-Proto": "https", "Host": "os.example"})
    assert forwarded["appPublicOrigin"] == "https://os.example"
    assert forwarded["websocketUrl"] == "wss://os.example/ws"
    # A Host that is not a host name does not get into the script.
    assert runtime_config(a, Host='x"};alert(1);//')["appPublicOrigin"] == "http://localhost"

    p = make_cluster(1, APP_PUBLIC_ORIGIN="https://os.example", REALTIME_PROVIDER="pusher", PUSHER_KEY="ryos-key")
    assert runtime_config(p.a, Host="elsewhere.example") == {
        "appPublicOrigin": "https://os.example", "docsBaseUrl": "https://os.example/docs", "realtimeProvider": "pusher",
        "websocketPath": "/ws", "websocketUrl": None, "pusher": {"key": "ryos-key", "cluster": "local", "forceTLS": True},
        "ieLiveBrowserAvailable": False,
    }
