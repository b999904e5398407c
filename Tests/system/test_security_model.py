"""Issue 14 (security): one test per finding, each showing the fixed behaviour, across two workers on one Redis where
the finding involved two. The contract: docs/security.md."""
import json
import time
import uuid

import requests
import websocket

from conftest import ADMIN_PASSWORD, User, admin, login, public_rooms, register, wait_until

KEY, SECRET, APP = "sec14-key", "sec14-secret-value", "1414"
PUSHER = {"PUSHER_KEY": KEY, "PUSHER_SECRET": SECRET, "PUSHER_APP_ID": APP}
REVOKED = {"type": "AccessRevoked", "error": "Access to this channel ended", "status": 403}
TICKET_ROUTE_ERROR = {"error": "Room IDs starting with ticket_ belong to support rooms"}
SUCCEEDED, SUB_ERROR = "pusher_internal:subscription_succeeded", "pusher:subscription_error"


# ---------------------------------------------------------------- helpers

def data_of(msg):
    """A Pusher message's data: an object or a JSON string, parsed either way."""
    data = msg.get("data")
    if isinstance(data, str):
        try:
            return json.loads(data)
        except ValueError:
            return data
    return data


class Socket:
    """A raw Pusher WebSocket on one worker; messages not yet asked for wait in a backlog."""

    def __init__(self, worker):
        port = int(worker.base.rsplit(":", 1)[1])
        self.ws = websocket.create_connection(f"ws://127.0.0.1:{port}/app/{KEY}?protocol=7", timeout=10)
        hello = json.loads(self.ws.recv())
        assert hello["event"] == "pusher:connection_established", hello
        self.id = data_of(hello)["socket_id"]
        self.backlog = []

    def send(self, event, data, channel=None):
        msg = {"event": event, "data": data}
        if channel:
            msg["channel"] = channel
        self.ws.send(json.dumps(msg))

    def _read(self, timeout):
        self.ws.settimeout(max(0.01, timeout))
        try:
            raw = self.ws.recv()
        except websocket.WebSocketTimeoutException:
            return None
        msg = json.loads(raw)
        if msg.get("event") == "pusher:ping":
            self.send("pusher:pong", {})
        return msg

    def wait_for(self, predicate, timeout=5.0):
        """The first message (in the backlog or arriving within `timeout`) matching `predicate`, taken out."""
        for i, msg in enumerate(self.backlog):
            if predicate(msg):
                return self.backlog.pop(i)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = self._read(deadline - time.monotonic())
            if msg is None:
                continue
            if predicate(msg):
                return msg
            self.backlog.append(msg)
        raise AssertionError(f"expected message not received within {timeout} s; got {self.backlog[-20:]}")

    def take_all(self):
        out, self.backlog = self.backlog, []
        return out

    def subscribe(self, channel, auth=None, channel_data=None, timeout=10.0):
        """Sends pusher:subscribe and returns the reply for that channel (succeeded or subscription_error)."""
        data = {"channel": channel}
        if auth is not None:
            data["auth"] = auth
        if channel_data is not None:
            data["channel_data"] = channel_data
        self.send("pusher:subscribe", data)
        return self.wait_for(lambda m: m.get("channel") == channel and m["event"] in (SUCCEEDED, SUB_ERROR), timeout)

    def close(self):
        try:
            self.ws.close()
        except Exception:
            pass


def channel_auth(worker, user, sock, channel):
    return worker.call("POST", "/pusher/auth", user=user, data={"socket_id": sock.id, "channel_name": channel})


def join_channel(auth_worker, user, sock, channel):
    """Subscribes `sock` to a private or presence channel with an auth string from `auth_worker`. Returns that auth."""
    r = channel_auth(auth_worker, user, sock, channel)
    assert r.status_code == 200, (channel, r.status_code, r.text)
    signed = r.json()
    reply = sock.subscribe(channel, signed["auth"], signed.get("channel_data"))
    assert reply["event"] == SUCCEEDED, reply
    return signed, reply


def drain(sock, seconds):
    """Everything `sock` receives within `seconds` (and its backlog)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        msg = sock._read(deadline - time.monotonic())
        if msg is not None:
            sock.backlog.append(msg)
    return [m for m in sock.take_all() if m["event"] != "sentinel"]


def flush(sock, r, timeout=10.0):
    """Everything `sock` receives up to a marker published on its `sentinel` channel after this call (one Redis
    delivers a worker's subscriptions in publish order, so whatever was published before has arrived by then). On a
    Redis Cluster channels are sharded over the primaries, which keep no order between them: there the marker goes
    out with SPUBLISH and a second's grace follows it."""
    from redis.cluster import RedisCluster
    marker = uuid.uuid4().hex
    payload = json.dumps({"event": "sentinel", "channel": "sentinel", "data": marker})
    if isinstance(r, RedisCluster):
        r.spublish("ch:{sentinel}", payload)
    else:
        r.publish("ch:{sentinel}", payload)
    sock.wait_for(lambda m: m["event"] == "sentinel" and m.get("data") == marker, timeout)
    got = [m for m in sock.take_all() if m["event"] != "sentinel"]
    if isinstance(r, RedisCluster):
        got += drain(sock, 1.0)
    return got


def assert_limited(r, what):
    """A 429 from a rate limit: Retry-After, RateLimit and RateLimit-Policy headers."""
    assert r.status_code == 429, (what, r.status_code, r.text)
    assert int(r.headers["Retry-After"]) >= 1, (what, dict(r.headers))
    assert r.headers.get("RateLimit") and r.headers.get("RateLimit-Policy"), (what, dict(r.headers))


def room_users(worker, user, room):
    r = worker.call("GET", f"/api/rooms/{room}/users", user=user)
    assert r.status_code == 200, r.text
    return sorted(u["username"] for u in r.json()["users"])


def private_rooms(worker, user):
    return [r["id"] for r in worker.call("GET", "/api/rooms", user=user).json()["rooms"] if r["type"] == "private"]


# ---------------------------------------------------------------- 1. admins

def test_1_no_admin_by_registration_and_the_ai_name_is_reserved(make_cluster):
    # A fresh install: no ADMIN_USERS, no ADMIN_PASSWORD.
    c = make_cluster(2, ADMIN_USERS=None, ADMIN_PASSWORD=None, MESSAGE_RATE_LIMIT=100000)
    a, b = c.a, c.b
    for worker, name in [(a, "ryo"), (b, "Ryo"), (a, "RYO")]:
        r = worker.call("POST", "/api/auth/register", json={"username": name, "password": "password123"})
        assert r.status_code == 403 and r.json() == {"error": "Username reserved"}, (name, r.status_code, r.text)
    assert not c.redis().exists("user:{ryo}")
    # The first person to register is nobody special.
    alice = register(a, "alice")
    assert b.call("DELETE", "/api/rooms/general", user=alice).status_code == 403
    assert b.call("POST", "/api/rooms", user=alice, json={"name": "Mine", "type": "public"}).status_code == 403
    assert a.call("GET", "/api/admin/agents", user=alice).status_code == 403
    assert a.call("PUT", "/api/admin/agents/alice", user=alice).status_code == 403
    assert a.call("GET", "/api/rooms/general").status_code == 200
    # The AI's replies say so; a person's messages do not.
    r = b.call("POST", "/api/ai/ryo-reply", user=alice, json={"roomId": "general", "prompt": "hey ryo"})
    assert r.status_code == 201, r.text
    reply = r.json()["message"]
    assert reply["username"] == "ryo" and reply["isAI"] is True
    r = a.call("POST", "/api/rooms/general/messages", user=alice, json={"content": "hello"})
    assert r.status_code == 201 and "isAI" not in r.json()["message"], r.text
    stored = {m["content"]: m for m in a.call("GET", "/api/rooms/general/messages").json()["messages"]}
    assert stored[reply["content"]]["isAI"] is True and stored[reply["content"]]["username"] == "ryo"
    assert "isAI" not in stored["hello"]
    # A name listed in ADMIN_USERS cannot be registered either, even before its account exists.
    d = make_cluster(1, ADMIN_USERS="chief", ADMIN_PASSWORD=None)
    r = d.a.call("POST", "/api/auth/register", json={"username": "Chief", "password": "password123"})
    assert r.status_code == 403 and r.json() == {"error": "Username reserved"}, r.text
    assert not c.redis().exists("user:{chief}")


def test_1_admins_come_from_configuration(make_cluster):
    c = make_cluster(2, ADMIN_USERS="boss,chief")
    a, b = c.a, c.b
    # Both accounts were created at start-up with ADMIN_PASSWORD; nobody can register them.
    for name in ["boss", "chief", "CHIEF"]:
        r = a.call("POST", "/api/auth/register", json={"username": name, "password": "password123"})
        assert r.status_code == 403 and r.json() == {"error": "Username reserved"}, (name, r.text)
    assert login(b, "chief", "wrong-password-9").status_code == 401
    r = login(b, "chief", ADMIN_PASSWORD)
    assert r.status_code == 200, r.text
    chief = User("chief", r.json()["token"])
    boss = admin(a)
    # Admin rights on every worker: public rooms and agents.
    r = a.call("POST", "/api/rooms", user=chief, json={"name": "Staff Room", "type": "public"})
    assert r.status_code == 201 and r.json()["room"]["createdBy"] == "chief", r.text
    assert b.call("DELETE", "/api/rooms/staff-room", user=boss).json() == {"success": True}
    assert b.call("GET", "/api/admin/agents", user=chief).status_code == 200
    alice = register(b, "alice")
    assert a.call("PUT", "/api/admin/agents/alice", user=boss).status_code == 200
    assert b.call("GET", "/api/admin/agents", user=alice).status_code == 403  # an agent is not an admin


def test_1_a_name_registered_before_it_was_listed_gets_no_admin_rights(make_cluster):
    """ADMIN_USERS grants rights only to accounts the bootstrap made (ADMIN_PASSWORD): an account someone registered
    before its name was added to ADMIN_USERS stays an ordinary user, and start-up says so in its log."""
    c = make_cluster(1, ADMIN_USERS=None, ADMIN_PASSWORD=None)
    mallory = register(c.a, "mallory")
    d = make_cluster(2, ADMIN_USERS="boss,mallory")
    a, b = d.a, d.b
    assert wait_until(lambda: "ADMIN_USERS names an account that was registered by a user" in a.proc.output(), 10), \
        a.proc.output()[-2000:]
    assert "user=mallory" in a.proc.output()
    for worker in (a, b):
        r = worker.call("POST", "/api/rooms", user=mallory, json={"name": "Takeover", "type": "public"})
        assert r.status_code == 403, r.text
        assert worker.call("GET", "/api/admin/agents", user=mallory).status_code == 403
        assert worker.call("GET", "/api/console/overview", user=mallory).status_code == 403
        assert worker.call("DELETE", "/api/rooms/general", user=mallory).status_code == 403
    # The bootstrap's own admin holds its rights on both workers, and its account says where it came from.
    boss = admin(b)
    r = a.call("POST", "/api/rooms", user=boss, json={"name": "Staff", "type": "public"})
    assert r.status_code == 201, r.text
    assert d.redis().hget("user:{boss}", "admin") == "bootstrap"
    assert d.redis().hget("user:{mallory}", "admin") is None


# ---------------------------------------------------------------- 2. access ends with membership

def test_2_leaving_a_private_room_ends_channel_access_on_every_worker(make_cluster):
    """Auth and REST on worker a, the leaver's socket on worker b."""
    c = make_cluster(2, **PUSHER, CHAT_PRESENCE_TTL=3, SWEEP_INTERVAL_MS=250, MESSAGE_RATE_LIMIT=100000)
    a, b = c.a, c.b
    r = c.redis()
    alice, bob, carol = (register(a, n) for n in ["alice", "bobby", "carol"])
    room = a.call("POST", "/api/rooms", user=alice, json={"name": "trio", "type": "private", "members": ["bobby", "carol"]})
    assert room.status_code == 201, room.text
    rid = room.json()["room"]["id"]
    priv, pres = f"private-room-{rid}", f"presence-room-{rid}"

    carol_ws = Socket(b)
    carol_priv, _ = join_channel(a, carol, carol_ws, priv)
    carol_pres, _ = join_channel(a, carol, carol_ws, pres)
    assert carol_ws.subscribe("sentinel")["event"] == SUCCEEDED
    alice_ws = Socket(a)
    join_channel(a, alice, alice_ws, priv)
    _, joined = join_channel(a, alice, alice_ws, pres)
    assert sorted(data_of(joined)["presence"]["ids"]) == ["alice", "carol"]
    assert alice_ws.subscribe("sentinel")["event"] == SUCCEEDED
    assert wait_until(lambda: room_users(a, alice, rid) == ["alice", "carol"], 5)

    # While a member, carol receives the room's messages and her client events reach alice.
    assert a.call("POST", f"/api/rooms/{rid}/messages", user=alice, json={"content": "before"}).status_code == 201
    carol_ws.wait_for(lambda m: m["event"] == "room-message" and m.get("channel") == priv
                      and data_of(m)["message"]["content"] == "before")
    carol_ws.send("client-typing", {"n": 1}, channel=priv)
    alice_ws.wait_for(lambda m: m["event"] == "client-typing" and m.get("channel") == priv)

    # carol leaves (REST on worker a); the room keeps alice and bob.
    assert a.call("DELETE", f"/api/rooms/{rid}", user=carol).status_code == 200
    for channel in (priv, pres):
        err = carol_ws.wait_for(lambda m, ch=channel: m["event"] == SUB_ERROR and m.get("channel") == ch, 5)
        assert data_of(err) == REVOKED, err
    removed = alice_ws.wait_for(lambda m: m["event"] == "pusher_internal:member_removed" and m.get("channel") == pres, 5)
    assert data_of(removed)["user_id"] == "carol"
    for w in (a, b):
        assert w.call("GET", f"/api/rooms/{rid}", user=carol).status_code == 403
        assert channel_auth(w, carol, carol_ws, priv).status_code == 403
        assert channel_auth(w, carol, carol_ws, pres).status_code == 403

    # Nothing more reaches her on the room's channels.
    flush(carol_ws, r)
    assert a.call("POST", f"/api/rooms/{rid}/messages", user=alice, json={"content": "after"}).status_code == 201
    alice_ws.wait_for(lambda m: m["event"] == "room-message" and data_of(m)["message"]["content"] == "after")
    leaked = [m for m in flush(carol_ws, r) if m.get("channel") in (priv, pres)]
    assert leaked == []
    # Her client events are refused and reach nobody.
    flush(alice_ws, r)
    carol_ws.send("client-typing", {"n": 2}, channel=priv)
    err = carol_ws.wait_for(lambda m: m["event"] == "pusher:error", 5)
    assert "Not subscribed" in data_of(err)["message"], err
    assert [m for m in flush(alice_ws, r) if m["event"].startswith("client-")] == []
    # The old auth strings are still correctly signed for her socket, and refused.
    flush(carol_ws, r)
    reply = carol_ws.subscribe(priv, carol_priv["auth"])
    assert reply["event"] == SUB_ERROR and data_of(reply)["status"] == 403, reply
    reply = carol_ws.subscribe(pres, carol_pres["auth"], carol_pres["channel_data"])
    assert reply["event"] == SUB_ERROR and data_of(reply)["status"] == 403, reply
    # Presence refreshes (CHAT_PRESENCE_TTL=3) do not bring her back: watched for two TTLs.
    deadline = time.monotonic() + 6.5
    while time.monotonic() < deadline:
        assert "carol" not in room_users(b, alice, rid)
        time.sleep(0.25)
    assert room_users(a, alice, rid) == ["alice"]  # alice's own presence is still refreshed
    carol_ws.close()
    alice_ws.close()


def test_2_deleted_private_room_revokes_every_members_sockets(make_cluster):
    c = make_cluster(2, **PUSHER)
    a, b = c.a, c.b
    alice, bob = register(a, "alice"), register(a, "bobby")
    rid = a.call("POST", "/api/rooms", user=alice, json={"name": "dm", "type": "private", "members": ["bobby"]}).json()["room"]["id"]
    priv, pres = f"private-room-{rid}", f"presence-room-{rid}"
    bob_ws, alice_ws = Socket(b), Socket(b)
    join_channel(a, bob, bob_ws, priv)
    join_channel(a, bob, bob_ws, pres)
    join_channel(a, alice, alice_ws, priv)
    # alice leaves: one member left, so the room is deleted, and both members' sockets lose its channels.
    assert a.call("DELETE", f"/api/rooms/{rid}", user=alice).status_code == 200
    assert a.call("GET", f"/api/rooms/{rid}", user=bob).status_code == 404
    for sock, channels in [(bob_ws, (priv, pres)), (alice_ws, (priv,))]:
        for channel in channels:
            err = sock.wait_for(lambda m, ch=channel: m["event"] == SUB_ERROR and m.get("channel") == ch, 5)
            assert data_of(err) == REVOKED, err
    for w in (a, b):
        assert channel_auth(w, bob, bob_ws, priv).status_code == 403
    bob_ws.send("client-typing", {"n": 1}, channel=priv)
    err = bob_ws.wait_for(lambda m: m["event"] == "pusher:error", 5)
    assert "Not subscribed" in data_of(err)["message"], err
    bob_ws.close()
    alice_ws.close()


def test_2_removed_agent_loses_ticket_channels_on_every_worker(make_cluster):
    """The admin removes the agent through worker a; the agent's socket is on worker b."""
    c = make_cluster(2, **PUSHER)
    a, b = c.a, c.b
    r = c.redis()
    boss = admin(a)
    agent, cust = register(a, "agent1"), register(a, "cust1")
    assert a.call("PUT", "/api/admin/agents/agent1", user=boss).status_code == 200
    assert a.call("POST", "/support/R-1/join", user=cust, json={"role": "customer"}).status_code == 200
    assert a.call("POST", "/support/R-1/join", user=agent, json={"role": "agent"}).status_code == 200
    # The agent is also the customer of a ticket of their own: that one they keep.
    assert a.call("POST", "/support/OWN-1/join", user=agent, json={"role": "customer"}).status_code == 200
    ticket, own = "private-room-ticket_R-1", "private-room-ticket_OWN-1"

    agent_ws, cust_ws = Socket(b), Socket(b)
    agent_ticket, _ = join_channel(a, agent, agent_ws, ticket)
    join_channel(a, agent, agent_ws, own)
    assert agent_ws.subscribe("sentinel")["event"] == SUCCEEDED
    join_channel(a, cust, cust_ws, ticket)
    assert a.call("POST", "/support/R-1/messages", user=cust, json={"content": "before"}).status_code == 201
    agent_ws.wait_for(lambda m: m["event"] == "room-message" and m.get("channel") == ticket)

    assert a.call("DELETE", "/api/admin/agents/agent1", user=boss).json() == {"success": True}
    err = agent_ws.wait_for(lambda m: m["event"] == SUB_ERROR and m.get("channel") == ticket, 5)
    assert data_of(err) == REVOKED, err
    flush(agent_ws, r)
    assert a.call("POST", "/support/R-1/messages", user=cust, json={"content": "after"}).status_code == 201
    cust_ws.wait_for(lambda m: m["event"] == "room-message" and data_of(m)["message"]["content"] == "after")
    seen = flush(agent_ws, r)
    assert [m for m in seen if m.get("channel") == ticket] == []
    assert [m for m in seen if m["event"] == SUB_ERROR] == []  # nothing else revoked: their own ticket stays
    assert b.call("POST", "/support/OWN-1/messages", user=agent, json={"content": "mine"}).status_code == 201
    agent_ws.wait_for(lambda m: m["event"] == "room-message" and m.get("channel") == own)
    for w in (a, b):
        assert channel_auth(w, agent, agent_ws, ticket).status_code == 403
        assert channel_auth(w, agent, agent_ws, own).status_code == 200
        assert w.call("GET", "/support/R-1/messages", user=agent).status_code == 403
    reply = agent_ws.subscribe(ticket, agent_ticket["auth"])
    assert reply["event"] == SUB_ERROR and data_of(reply)["status"] == 403, reply
    agent_ws.close()
    cust_ws.close()


# ---------------------------------------------------------------- 3. ticket seats

def test_3_outsiders_cannot_take_a_ticket_seat(make_cluster):
    """Tickets opened on worker a; the outsider (eve) tries on worker b."""
    c = make_cluster(2, **PUSHER)
    a, b = c.a, c.b
    boss = admin(a)
    agent, cust, eve = register(a, "agent1"), register(a, "cust1"), register(a, "eve")
    assert a.call("PUT", "/api/admin/agents/agent1", user=boss).status_code == 200
    sock = Socket(b)

    def shut_out(user, ticket, secret=None, closed=False):
        for w in (a, b):
            for path in ["messages", "snapshot", "members"]:
                r = w.call("GET", f"/support/{ticket}/{path}", user=user)
                # A closed ticket has no live members list: 410 is no leak there.
                allowed = (403, 410) if closed and path == "members" else (403,)
                assert r.status_code in allowed, (user.name, ticket, path, r.status_code, r.text)
                assert secret is None or secret not in r.text
            assert channel_auth(w, user, sock, f"private-room-ticket_{ticket}").status_code == 403, (user.name, ticket)

    # A closed ticket takes no joins, and a refused join records nothing.
    assert a.call("POST", "/support/C-1/join", user=cust, json={}).status_code == 200
    assert a.call("POST", "/support/C-1/messages", user=cust, json={"content": "my address"}).status_code == 201
    assert a.call("POST", "/support/C-1/close", user=agent, json={}).status_code == 200
    for body in ({"role": "customer"}, {}):
        r = b.call("POST", "/support/C-1/join", user=eve, json=body)
        assert (r.status_code, r.json()) in [(410, {"error": "Room closed"}), (403, {"error": "Forbidden"})], r.text
    for user in (cust, agent):
        r = b.call("POST", "/support/C-1/join", user=user, json={"role": "customer" if user is cust else "agent"})
        assert r.status_code == 410 and r.json() == {"error": "Room closed"}, r.text
    shut_out(eve, "C-1", "my address", closed=True)
    assert a.call("POST", "/support/C-1/reopen", user=agent).status_code == 200
    shut_out(eve, "C-1", "my address")
    assert [m["content"] for m in b.call("GET", "/support/C-1/messages", user=cust).json()["messages"]] == ["my address"]
    assert channel_auth(b, cust, sock, "private-room-ticket_C-1").status_code == 200

    # A ticket an agent opened (metadata, as the seed orders it) without naming a customer: the first user to join as
    # customer takes the seat, and from then on nobody else can. Joining as anything else takes nothing.
    r = a.call("POST", "/support/A-1/metadata", user=agent, json={"priority": "high"})
    assert r.status_code == 200 and r.json()["room"]["customerId"] is None, r.text
    assert a.call("POST", "/support/A-1/join", user=agent, json={"role": "agent"}).status_code == 200
    assert a.call("POST", "/support/A-1/messages", user=agent, json={"content": "welcome, ticket 4242"}).status_code == 201
    for role in ("agent", "observer"):
        r = b.call("POST", "/support/A-1/join", user=eve, json={"role": role})
        assert r.status_code == 403 and r.json() == {"error": "Forbidden"}, r.text
    shut_out(eve, "A-1", "4242")
    r = b.call("POST", "/support/A-1/join", user=cust, json={"role": "customer"})
    assert r.status_code == 200 and r.json()["member"]["metadata"] == {"role": "customer"}, r.text
    r = a.call("GET", "/support/A-1/messages", user=cust)
    assert "welcome, ticket 4242" in [m["content"] for m in r.json()["messages"]], r.text
    assert channel_auth(a, cust, sock, "private-room-ticket_A-1").status_code == 200
    for body in ({"role": "customer"}, {}):
        r = b.call("POST", "/support/A-1/join", user=eve, json=body)
        assert r.status_code == 403 and r.json() == {"error": "Forbidden"}, r.text
    shut_out(eve, "A-1", "4242")
    members = [m["username"] for m in a.call("GET", "/support/A-1/members", user=agent).json()["members"]]
    assert sorted(members) == ["agent1", "cust1"]

    # An agent (or an admin) may name the customer in advance, which locks the seat.
    assert a.call("POST", "/support/J-1/join", user=agent, json={"role": "agent"}).status_code == 200
    assert b.call("POST", "/support/J-1/metadata", user=agent, json={"customerId": "nobody"}).status_code == 400
    assert b.call("POST", "/support/J-1/metadata", user=eve, json={"customerId": "eve"}).status_code == 403
    r = b.call("POST", "/support/J-1/metadata", user=boss, json={"customerId": "cust1"})
    assert r.status_code == 200 and r.json()["room"]["customerId"] == "cust1", r.text
    r = b.call("POST", "/support/J-1/join", user=eve, json={"role": "customer"})
    assert r.status_code == 403 and r.json() == {"error": "Forbidden"}
    shut_out(eve, "J-1")
    assert a.call("POST", "/support/J-1/join", user=cust, json={}).status_code == 200

    # A closed ticket takes no new customer, even with its seat free.
    assert a.call("POST", "/support/F-1/metadata", user=agent, json={"status": "open"}).status_code == 200
    assert a.call("POST", "/support/F-1/close", user=agent, json={}).status_code == 200
    r = b.call("POST", "/support/F-1/join", user=eve, json={"role": "customer"})
    assert (r.status_code, r.json()) == (410, {"error": "Room closed"}), r.text
    r = a.call("POST", "/support/F-1/reopen", user=agent)
    assert r.status_code == 200 and r.json()["room"]["customerId"] is None, r.text

    # A ticket whose customer opened it: the seat is theirs.
    assert a.call("POST", "/support/O-1/join", user=cust, json={"role": "customer"}).status_code == 200
    r = b.call("POST", "/support/O-1/join", user=eve, json={"role": "customer"})
    assert r.status_code == 403 and r.json() == {"error": "Forbidden"}
    shut_out(eve, "O-1")
    sock.close()


# ---------------------------------------------------------------- 4. transcripts

def test_4_support_messages_are_rate_limited_per_user(make_cluster):
    c = make_cluster(2, SUPPORT_MESSAGE_RATE_LIMIT=5)
    a, b = c.a, c.b
    boss = admin(a)
    agent, cust = register(a, "agent1"), register(a, "cust1")
    assert a.call("PUT", "/api/admin/agents/agent1", user=boss).status_code == 200
    assert a.call("POST", "/support/S-1/join", user=cust, json={}).status_code == 200
    assert b.call("POST", "/support/S-1/join", user=agent, json={"role": "agent"}).status_code == 200
    codes = [(a, b)[i % 2].call("POST", "/support/S-1/messages", user=cust, json={"content": f"m{i}"}).status_code
             for i in range(5)]
    assert codes == [201] * 5
    assert_limited(b.call("POST", "/support/S-1/messages", user=cust, json={"content": "m5"}), "6th support message")
    assert a.call("POST", "/support/S-1/messages", user=agent, json={"content": "one at a time"}).status_code == 201
    transcript = [m["content"] for m in b.call("GET", "/support/S-1/messages", user=agent).json()["messages"]]
    assert transcript == ["m0", "m1", "m2", "m3", "m4", "one at a time"]


def test_4_flooding_cannot_erase_a_transcript(make_cluster):
    c = make_cluster(2, SUPPORT_TRANSCRIPT_LIMIT=20, HISTORY_LIMIT=5, SUPPORT_MESSAGE_RATE_LIMIT=100000,
                     MESSAGE_RATE_LIMIT=100000)
    a, b = c.a, c.b
    boss = admin(a)
    agent, cust = register(a, "agent1"), register(a, "cust1")
    assert a.call("POST", "/support/F-1/join", user=cust, json={}).status_code == 200
    assert a.call("PUT", "/api/admin/agents/agent1", user=boss).status_code == 200
    assert a.call("POST", "/support/F-1/join", user=agent, json={"role": "agent"}).status_code == 200
    assert a.call("POST", "/support/F-1/messages", user=agent, json={"content": "agent: refund approved"}).status_code == 201
    replies = [(a, b)[i % 2].call("POST", "/support/F-1/messages", user=cust, json={"content": f"flood {i}"}) for i in range(30)]
    assert [r.status_code for r in replies] == [201] * 19 + [409] * 11
    assert all(r.json() == {"error": "Transcript is full"} for r in replies[19:])
    r = b.call("POST", "/support/F-1/messages", user=agent, json={"content": "late"})
    assert r.status_code == 409 and r.json() == {"error": "Transcript is full"}
    transcript = b.call("GET", "/support/F-1/messages?limit=100", user=agent).json()["messages"]
    assert len(transcript) == 20
    assert transcript[0]["content"] == "agent: refund approved" and transcript[0]["role"] == "agent"
    assert [m["content"] for m in transcript[1:]] == [f"flood {i}" for i in range(19)]
    # HISTORY_LIMIT still trims chat rooms.
    alice = register(a, "alice")
    for i in range(8):
        assert (a, b)[i % 2].call("POST", "/api/rooms/general/messages", user=alice, json={"content": f"c{i}"}).status_code == 201
    assert [m["content"] for m in a.call("GET", "/api/rooms/general/messages").json()["messages"]] == [f"c{i}" for i in range(7, 2, -1)]


# ---------------------------------------------------------------- 5. login lockout

def xff(address):
    return {"X-Forwarded-For": address}


def test_5_wrong_passwords_from_elsewhere_do_not_lock_the_owner_out(make_cluster):
    c = make_cluster(2, LOGIN_RATE_LIMIT=10, LOGIN_USER_RATE_LIMIT=100, LOGIN_ADDRESS_RATE_LIMIT=100)
    a, b = c.a, c.b
    register(a, "victim", "victim-password")
    assert login(a, "victim", "victim-password", xff("10.0.0.1")).status_code == 200
    codes = [login((a, b)[i % 2], "victim", f"guess-{i}-password", xff("10.0.0.2")).status_code for i in range(10)]
    assert codes == [401] * 10
    assert_limited(login(b, "victim", "guess-11-password", xff("10.0.0.2")), "11th wrong attempt from one address")
    assert_limited(login(a, "victim", "victim-password", xff("10.0.0.2")), "the attacker's address, right password")
    # The owner, from the address they signed in from, is not affected.
    r = login(b, "victim", "victim-password", xff("10.0.0.1"))
    assert r.status_code == 200 and r.json()["username"] == "victim", r.text


def test_5_rotating_addresses_hit_the_username_ceiling_but_not_a_known_address(make_cluster):
    c = make_cluster(2, LOGIN_RATE_LIMIT=10, LOGIN_USER_RATE_LIMIT=20, LOGIN_ADDRESS_RATE_LIMIT=100)
    a, b = c.a, c.b
    register(a, "victim", "victim-password")
    assert login(a, "victim", "victim-password", xff("10.0.0.1")).status_code == 200
    replies = [login((a, b)[i % 2], "victim", "wrong-password-x", xff(f"10.1.0.{i + 1}")) for i in range(25)]
    codes = [r.status_code for r in replies]
    assert set(codes) == {401, 429}, codes
    first_refused = codes.index(429)
    assert 19 <= first_refused <= 20 and codes[first_refused:] == [429] * (25 - first_refused), codes
    assert_limited(replies[-1], "25th address")
    # A correct login from a new address is refused too; from the known address it is not.
    assert_limited(login(b, "victim", "victim-password", xff("10.2.0.1")), "right password, new address")
    r = login(a, "victim", "victim-password", xff("10.0.0.1"))
    assert r.status_code == 200 and r.json()["username"] == "victim", r.text


# ---------------------------------------------------------------- 6. registration

def test_6_registrations_are_limited_per_address(make_cluster):
    c = make_cluster(2, REGISTER_RATE_LIMIT=3)
    a, b = c.a, c.b

    def reg(worker, name, address):
        return worker.call("POST", "/api/auth/register", json={"username": name, "password": "password123"},
                           headers=xff(address))

    assert [reg((a, b)[i % 2], f"spam{i}", "10.3.0.1").status_code for i in range(3)] == [201] * 3
    assert_limited(reg(b, "spam3", "10.3.0.1"), "4th registration from one address")
    assert_limited(reg(a, "spam4", "10.3.0.1"), "5th registration from one address")
    assert not c.redis().exists("user:{spam3}") and not c.redis().exists("user:{spam4}")
    assert reg(a, "honest", "10.3.0.2").status_code == 201


# ---------------------------------------------------------------- 7. presence churn

def test_7_presence_churn_is_limited_and_does_not_flood_listeners(make_cluster):
    """The churning socket is on worker a, the listeners on worker b; switches alternate workers."""
    limit = 10
    c = make_cluster(2, **PUSHER, PRESENCE_RATE_LIMIT=limit)
    a, b = c.a, c.b
    r = c.redis()
    churner, watcher, spammer = register(a, "churner"), register(a, "watcher"), register(a, "spammer")
    listener = Socket(b)
    for channel in ("chats-public", "room-general", "sentinel"):
        assert listener.subscribe(channel)["event"] == SUCCEEDED
    join_channel(b, watcher, listener, "presence-room-general")
    flush(listener, r)

    ws = Socket(a)
    signed = channel_auth(a, churner, ws, "presence-room-general").json()
    replies = []
    for _ in range(40):
        replies.append(ws.subscribe("presence-room-general", signed["auth"], signed["channel_data"]))
        ws.send("pusher:unsubscribe", {"channel": "presence-room-general"})
    assert [m["event"] for m in replies[:limit]] == [SUCCEEDED] * limit, replies[:limit]
    refused = replies[limit:]
    assert all(m["event"] == SUB_ERROR for m in refused), refused
    assert all(data_of(m)["status"] == 429 and data_of(m)["type"] == "LimitReached" for m in refused), refused[:3]

    # Everything published by now, and whatever a coalescing worker still sends over the next 2 s.
    seen = flush(listener, r) + drain(listener, 2.0)
    updates = [m for m in seen if m["event"] == "presence-update" and m.get("channel") == "room-general"]
    rooms = [m for m in seen if m["event"] == "room-updated" and m.get("channel") == "chats-public"]
    members = [m for m in seen if m["event"].startswith("pusher_internal:member_") and m.get("channel") == "presence-room-general"]
    assert 1 <= len(updates) <= 2 * limit + 2, len(updates)
    assert len(rooms) <= 2 * limit + 2, len(rooms)
    assert 1 <= len(members) <= 2 * limit + 2, len(members)

    # Switch spam through both workers: 429 with Retry-After past the limit, and a refused switch changes nothing.
    rooms_ids = ["general", "random"]
    results = []
    for i in range(20):
        body = {"username": "spammer", "previousRoomId": None if i == 0 else rooms_ids[(i - 1) % 2], "nextRoomId": rooms_ids[i % 2]}
        results.append((a, b)[i % 2].call("POST", "/api/presence/switch", user=spammer, json=body))
    assert [x.status_code for x in results] == [200] * limit + [429] * (20 - limit), [x.text for x in results]
    assert_limited(results[-1], "switch spam")
    assert "spammer" in room_users(a, spammer, rooms_ids[(limit - 1) % 2])
    assert "spammer" not in room_users(b, spammer, rooms_ids[limit % 2])
    ws.close()
    listener.close()


# ---------------------------------------------------------------- 8. forwarded addresses

def test_8_forwarded_addresses_are_normalised_before_they_key_a_limit(make_cluster):
    c = make_cluster(2, SEARCH_RATE_LIMIT=3)
    a, b = c.a, c.b

    def search(worker, address):
        return worker.call("GET", "/api/users?search=ab", headers=xff(address))

    spellings = ["2001:db8::1", "2001:0db8::1", "2001:DB8::1"]
    assert [search((a, b)[i % 2], s).status_code for i, s in enumerate(spellings)] == [200] * 3
    assert_limited(search(b, "2001:db8:0:0:0:0:0:1"), "a fourth spelling of 2001:db8::1")
    assert search(a, "2001:db8::2").status_code == 200
    assert [search(w, s).status_code for w, s in [(a, "::ffff:192.0.2.7"), (b, "192.0.2.7"), (a, "::FFFF:192.0.2.7")]] == [200] * 3
    assert_limited(search(b, "192.0.2.7"), "IPv4 after its IPv4-mapped forms")
    assert search(b, "192.0.2.8").status_code == 200


def test_8_without_trusted_proxies_forwarded_for_is_ignored(make_cluster):
    c = make_cluster(2, SEARCH_RATE_LIMIT=3, TRUSTED_PROXIES="")
    a, b = c.a, c.b
    codes = [(a, b)[i % 2].call("GET", "/api/users?search=ab", headers=xff(f"198.51.100.{i + 1}")).status_code for i in range(3)]
    assert codes == [200] * 3
    assert_limited(b.call("GET", "/api/users?search=ab", headers=xff("198.51.100.99")), "rotating X-Forwarded-For")


# ---------------------------------------------------------------- 9. private-room spam and names

def test_9_room_creation_is_rate_limited(make_cluster):
    c = make_cluster(2, ROOM_RATE_LIMIT=5)
    a, b = c.a, c.b
    alice, bob = register(a, "alice"), register(a, "bobby")
    for i in range(5):
        r = (a, b)[i % 2].call("POST", "/api/rooms", user=alice, json={"name": f"r{i}", "type": "private", "members": ["bobby"]})
        assert r.status_code == 201, r.text
    assert_limited(b.call("POST", "/api/rooms", user=alice, json={"name": "r5", "type": "private", "members": ["bobby"]}), "6th room")
    assert len(private_rooms(a, bob)) == 5 and len(private_rooms(b, alice)) == 5
    # Per user: bob may still create one.
    assert a.call("POST", "/api/rooms", user=bob, json={"name": "back", "type": "private", "members": ["alice"]}).status_code == 201


def test_9_invitations_are_rate_limited(make_cluster):
    c = make_cluster(2, INVITE_RATE_LIMIT=4)
    a, b = c.a, c.b
    alice, dave = register(a, "alice"), register(a, "dave")
    friends = [register(a, f"friend{i}") for i in range(5)]
    names = [f.name for f in friends]
    assert_limited(b.call("POST", "/api/rooms", user=alice, json={"name": "all", "type": "private", "members": names}),
                   "a room naming 5 others")
    assert private_rooms(a, alice) == [] and all(private_rooms(b, f) == [] for f in friends)
    assert a.call("POST", "/api/rooms", user=dave, json={"name": "four", "type": "private", "members": names[:4]}).status_code == 201
    assert_limited(b.call("POST", "/api/rooms", user=dave, json={"name": "one", "type": "private", "members": names[4:]}),
                   "a fifth invitation within the hour")
    assert len(private_rooms(a, dave)) == 1 and private_rooms(b, friends[4]) == []


def test_9_room_names_refuse_control_and_bidirectional_characters(make_cluster):
    c = make_cluster(2)
    a, b = c.a, c.b
    boss = admin(a)
    alice, bob = register(a, "alice"), register(a, "bobby")
    public_before = public_rooms(c.redis())
    for bad in ["nul\x00name", "bell\x07", "del\x7fete", "two\nlines", "evil\u202etxt.exe", "iso\u2066late", "pop\u2069"]:
        r = a.call("POST", "/api/rooms", user=alice, json={"name": bad, "type": "private", "members": ["bobby"]})
        assert r.status_code == 400 and isinstance(r.json().get("error"), str), (repr(bad), r.status_code, r.text)
        r = b.call("POST", "/api/rooms", user=boss, json={"name": bad, "type": "public"})
        assert r.status_code == 400, (repr(bad), r.status_code, r.text)
    assert private_rooms(a, alice) == [] and private_rooms(b, bob) == []
    assert public_rooms(c.redis()) == public_before
    assert a.call("POST", "/api/rooms", user=alice, json={"name": "Plain name", "type": "private", "members": ["bobby"]}).status_code == 201


# ---------------------------------------------------------------- 10. chat routes refuse ticket_ ids

def test_10_chat_routes_refuse_support_room_ids(make_cluster):
    c = make_cluster(2)
    a, b = c.a, c.b
    boss = admin(a)
    cust = register(a, "cust1")
    assert a.call("POST", "/support/t10/join", user=cust, json={}).status_code == 200

    def customer_member():
        members = b.call("GET", "/support/t10/members", user=boss).json()["members"]
        return [m for m in members if m["username"] == "cust1"]

    before = customer_member()
    assert len(before) == 1
    r = b.call("POST", "/api/presence/heartbeat", user=cust, json={"roomId": "ticket_t10"})
    assert r.status_code == 400 and r.json() == TICKET_ROUTE_ERROR, r.text
    for prev, nxt in [("ticket_t10", None), ("ticket_t10", "general"), (None, "ticket_t10"), ("general", "ticket_t10")]:
        worker = a if nxt is None else b
        r = worker.call("POST", "/api/presence/switch", user=cust,
                                     json={"username": "cust1", "previousRoomId": prev, "nextRoomId": nxt})
        assert r.status_code == 400 and r.json() == TICKET_ROUTE_ERROR, (prev, nxt, r.text)
    for prev, nxt in [("TICKET_t10", None), ("Ticket_t10", None), (None, "TICKET_t10")]:
        r = a.call("POST", "/api/presence/switch", user=cust, json={"username": "cust1", "previousRoomId": prev, "nextRoomId": nxt})
        assert r.status_code == 400, (prev, nxt, r.text)
    after = customer_member()
    assert len(after) == 1 and after[0]["expiresAt"] == before[0]["expiresAt"], (before, after)
    assert room_users(a, cust, "general") == []  # the refused switches did not enter general either
    for w in (a, b):
        for method, path, body in [("GET", "/api/rooms/ticket_t10/messages", None),
                                   ("POST", "/api/rooms/ticket_t10/messages", {"content": "hi"}),
                                   ("GET", "/api/rooms/ticket_t10", None),
                                   ("GET", "/api/rooms/ticket_t10/users", None)]:
            r = w.call(method, path, user=cust, json=body)
            assert r.status_code == 400 and r.json() == TICKET_ROUTE_ERROR, (method, path, r.status_code, r.text)
    assert [m["username"] for m in b.call("GET", "/support/t10/members", user=boss).json()["members"]] == ["cust1"]
    assert a.call("GET", "/support/t10/messages", user=cust).json() == {"messages": []}


# ---------------------------------------------------------------- 11. metrics

def test_11_metrics_only_on_the_metrics_listener(make_cluster):
    c = make_cluster(2)
    a, b = c.a, c.b
    assert b.call("GET", "/api/rooms").status_code == 200
    for w in (a, b):
        r = w.call("GET", "/metrics")
        assert r.status_code == 404 and r.json() == {"error": "Not found"}, r.text[:200]
        assert "http_requests_total" not in r.text
    assert a.proc.metrics_port != b.proc.metrics_port
    text = b.metrics()
    assert "# TYPE" in text and 'route="/api/rooms"' in text, text[:500]
    r = requests.get(a.proc.metrics_url, timeout=10)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/plain"), r.headers
    # METRICS_PORT=0: no listener at all, and still nothing on the API port.
    d = make_cluster(1, METRICS_PORT=0)
    assert d.a.proc.metrics_url is None
    assert d.a.call("GET", "/metrics").status_code == 404
    assert d.a.call("GET", "/health").status_code == 200
